import {randomBytes} from 'node:crypto'

/**
 * How a script travels to a remote `sh -s` (over ssh, or a debug pod's exec
 * stream): the script on stdin, parsed whole before it runs, and a deadline
 * the remote side enforces itself.
 */

/** Exit code reported with timedOut (as timeout(1) does); callers should look at timedOut. */
export const TIMEOUT_EXIT_CODE = 124

/**
 * The remote side runs `sh -s` and reads this from stdin. The script is
 * wrapped in a brace group so that the shell parses all of it before running
 * any of it: a command in the script that reads stdin gets /dev/null (or the
 * caller's stdin, as a quoted here-document) instead of the rest of the script.
 */
export function wrapScript(script: string, stdin?: string): string {
  const body = script.endsWith('\n') ? script : `${script}\n`
  if (stdin === undefined) return `{\n${body}} </dev/null\n`
  let tag = 'NETCTL_STDIN'
  while (stdin.includes(tag)) tag = `NETCTL_STDIN_${randomBytes(6).toString('hex')}`
  return `{\n${body}} <<'${tag}'\n${stdin}${stdin === '' || stdin.endsWith('\n') ? '' : '\n'}${tag}\n`
}

/**
 * What the remote side runs; constant but for a number. With a deadline the
 * script runs under timeout(1) when the node has it: closing the channel
 * leaves the remote processes running (sshd does not kill a session's
 * children), and timeout kills the script's whole process group. It fires a
 * little after the local deadline, so the local timeout is the one reported.
 */
export function remoteCommand(timeoutMs?: number): string {
  const argv = remoteArgv(timeoutMs)
  return argv.length === 2 ? argv.join(' ') : `sh -c '${argv[2]}'`
}

/** remoteCommand() as an argv, for transports that take one (a pod exec): `sh -s`, or `sh -c '<timeout wrapper>'`. */
export function remoteArgv(timeoutMs?: number): string[] {
  if (timeoutMs === undefined) return ['sh', '-s']
  const secs = Math.ceil(timeoutMs / 1000) + 2
  return ['sh', '-c', `if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL ${secs} sh -s; fi; exec sh -s`]
}
