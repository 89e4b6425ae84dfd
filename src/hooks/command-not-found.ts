import {Errors, type Hook, ux} from '@oclif/core'

import {errorJson} from '../base-command.js'
import {ERROR_CLASSES} from '../errors.js'
import {printable} from '../render/color.js'
import {closest} from '../util/edit-distance.js'

/**
 * `netctl frob`: an unknown command is a usage error like any other (exit 2),
 * one line on stderr with the nearest command, or with --json the error
 * object every other --json error prints.
 */
const hook: Hook<'command_not_found'> = async function (opts) {
  const asked = opts.id.replace(/:/g, ' ')
  const commands = opts.config.commandIDs.map((c) => c.replace(/:/g, ' '))
  const guess = closest(asked, commands)
  const message = `unknown command '${asked}'${guess ? `: did you mean ${guess}?` : ''} (netctl --help lists the commands)`
  const {exit, code} = ERROR_CLASSES.usage
  const args = process.argv.slice(2)
  const end = args.indexOf('--')
  if ((end === -1 ? args : args.slice(0, end)).includes('--json')) ux.stdout(ux.colorizeJson(errorJson(code, message, exit), {pretty: true}))
  else process.stderr.write(`netctl: ${printable(message)}\n`)
  // said already: oclif only ends the process with the code
  Errors.exit(exit)
}

export default hook
