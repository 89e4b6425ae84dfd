/**
 * A mistyped command (`netctl frob`): a usage error like any other (exit 2).
 * It names the word the user typed (never oclif's internal `trac:a:b` id, which
 * glues the arguments on) and the closest command; with --json it prints the
 * error object every other --json error prints. On a terminal
 * @oclif/plugin-not-found asks "Did you mean …?" and runs the suggestion with
 * the same arguments.
 */
import {Errors, type Hook, ux} from '@oclif/core'

import {errorJson} from '../base-command.js'
import {ERROR_CLASSES} from '../errors.js'
import {printable} from '../render/color.js'
import {closest} from '../util/edit-distance.js'

const hook: Hook.CommandNotFound = async function (opts) {
  const {config} = opts
  const parts = opts.id.split(':')
  // the topics the user typed (`lab`), then the one word that names nothing
  let depth = 0
  while (depth < parts.length - 1 && config.findTopic(parts.slice(0, depth + 1).join(':'))) depth++
  const typed = parts.slice(0, depth + 1).join(':')
  const args = [...parts.slice(depth + 1), ...(opts.argv ?? [])]
  const ids = config.commands.filter((c) => !c.hidden).map((c) => c.id)
  const suggestion = closest(typed, ids)
  const words = (id: string): string => id.split(':').join(' ')
  const argv = process.argv.slice(2)
  const end = argv.indexOf('--')
  const json = (end === -1 ? argv : argv.slice(0, end)).includes('--json')

  if (!json && process.stdin.isTTY && process.stderr.isTTY && suggestion) {
    const {default: notFound} = await import('@oclif/plugin-not-found')
    try {
      return await notFound.call(this, {...opts, id: typed, argv: args})
    } catch {
      // declined: the same usage error as without a terminal
    }
  }
  const guess = suggestion ? `; did you mean '${words(suggestion)}'?` : '.'
  const topic = depth > 0 ? ` ${words(parts.slice(0, depth).join(':'))}` : ''
  const message = `'${words(typed)}' is not a netctl command${guess} See 'netctl${topic} --help'.`
  const {exit, code} = ERROR_CLASSES.usage
  if (json) ux.stdout(ux.colorizeJson(errorJson(code, message, exit), {pretty: true}))
  else process.stderr.write(`netctl: ${printable(message)}\n`)
  // said already: oclif only ends the process with the code
  Errors.exit(exit)
}

export default hook
