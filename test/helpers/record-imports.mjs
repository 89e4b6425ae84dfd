// Preloaded into a netctl process (NODE_OPTIONS=--import): records every module it
// resolves, ESM and require alike, and writes the list to $NETCTL_TEST_IMPORTS at exit.
import {writeFileSync} from 'node:fs'
import {registerHooks} from 'node:module'

const seen = new Set()
registerHooks({
  resolve(specifier, context, next) {
    const r = next(specifier, context)
    seen.add(r.url)
    return r
  },
})
process.on('exit', () => writeFileSync(process.env.NETCTL_TEST_IMPORTS, [...seen].join('\n')))
