import chalk, {Chalk} from 'chalk'

/** chalk, but plain when NO_COLOR is set or stdout is not a terminal. */
export function colors(stream: NodeJS.WriteStream = process.stdout): InstanceType<typeof Chalk> {
  if ('NO_COLOR' in process.env || !stream.isTTY) return new Chalk({level: 0})
  return chalk
}

/**
 * Lay out rows as aligned columns (plain text width; colour codes are added after).
 * With `spanning`, the last cell of a row shorter than the header runs across the
 * columns left (a `failed: why` row): it widens none of them.
 */
export function table(header: string[], rows: string[][], indent = '', opts: {spanning?: boolean} = {}): string {
  const counted = opts.spanning ? rows.map((r) => (r.length < header.length ? r.slice(0, -1) : r)) : rows
  const widths = header.map((h, i) => Math.max(h.length, ...counted.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string =>
    indent +
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/**
 * A line that may carry text from a cluster (a node's answer, a name) made
 * safe for a terminal: control characters (escape sequences, carriage
 * returns) are shown as \xHH, never obeyed.
 */
export function printable(line: string): string {
  return line.replace(
    /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  )
}
