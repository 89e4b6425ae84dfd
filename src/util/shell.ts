/**
 * Quote one value for a POSIX shell. Every value that reaches a shell script
 * (node, pod and interface names, paths) goes through here, so a name like
 * `a'; rm -rf /` stays one harmless word.
 */
export function shq(value: string | number): string {
  const s = String(value)
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/** Join argv into one shell command line, each word quoted. */
export function shjoin(argv: Array<string | number>): string {
  return argv.map(shq).join(' ')
}
