import chalk, {Chalk} from 'chalk'

/** chalk, but plain when NO_COLOR is set or stdout is not a terminal. */
export function colors(stream: NodeJS.WriteStream = process.stdout): InstanceType<typeof Chalk> {
  if ('NO_COLOR' in process.env || !stream.isTTY) return new Chalk({level: 0})
  return chalk
}

/** Lay out rows as aligned columns (plain text width; colour codes are added after). */
export function table(header: string[], rows: string[][], indent = ''): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => indent + cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}
