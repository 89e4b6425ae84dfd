/**
 * A mistyped command: name the word the user typed (never oclif's internal
 * `trac:a:b` id, which glues the arguments on) and the closest command, as a
 * usage error (exit 2). On a terminal @oclif/plugin-not-found asks "Did you
 * mean …?" and runs the suggestion with the same arguments.
 */
import type {Hook} from '@oclif/core'

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

  if (process.stdin.isTTY && process.stderr.isTTY && suggestion) {
    const {default: notFound} = await import('@oclif/plugin-not-found')
    try {
      return await notFound.call(this, {...opts, id: typed, argv: args})
    } catch {
      // declined: the same usage error as without a terminal
    }
  }
  const guess = suggestion ? `; did you mean '${words(suggestion)}'?` : '.'
  const topic = depth > 0 ? ` ${words(parts.slice(0, depth).join(':'))}` : ''
  process.stderr.write(`netctl: '${words(typed)}' is not a netctl command${guess} See 'netctl${topic} --help'.\n`)
  return this.exit(2)
}

export default hook
