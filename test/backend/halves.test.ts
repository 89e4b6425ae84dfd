import {readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {REPO} from '../helpers/cli.js'

const PLAN = path.join(REPO, 'src', 'backend', 'plan')

/** Every value import of a file (type-only imports are erased and reach nothing at run time), resolved against the repository. */
function valueImports(file: string, text = readFileSync(file, 'utf8')): string[] {
  const specs = [...text.matchAll(/^import\s+(?!type\b)[^;]*?\sfrom\s+'([^']+)'/gms)].map((m) => m[1]!)
  return specs.map((s) => (s.startsWith('.') ? path.relative(REPO, path.resolve(path.dirname(file), s)) : s))
}

describe('src/backend in two halves', () => {
  it('plan/ is pure: it reaches no node, no API, no file and nothing in act/', () => {
    const files = readdirSync(PLAN).filter((f) => f.endsWith('.ts'))
    expect(files.length).toBeGreaterThan(5)
    const allowed =
      /^(src\/backend\/plan\/|src\/model\/|src\/analyze\/|src\/util\/(exec|shell)\.js$|ipaddr\.js$|node:crypto$)/
    const offending = files.flatMap((f) =>
      valueImports(path.join(PLAN, f))
        .filter((s) => !allowed.test(s))
        .map((s) => `${f}: ${s}`),
    )
    expect(offending).toEqual([])
  })

  it('the check sees an import it must refuse', () => {
    const text =
      "import {runBatch} from '../act/batch.js'\nimport type {Transport} from '../../transport/types.js'\nimport {\n  ownedState,\n} from './current.js'\n"
    expect(valueImports(path.join(PLAN, 'x.ts'), text)).toEqual([
      'src/backend/act/batch.js',
      'src/backend/plan/current.js',
    ])
  })
})
