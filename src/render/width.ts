/**
 * Text at the terminal's width: every renderer that lays out lines wraps them
 * here, with wrap-ansi (colour codes kept, words never split unless a word is
 * wider than the line) and string-width (what a line takes on screen).
 */

/**
 * string-width and wrap-ansi, once loaded: evaluating them builds an Intl.Segmenter and Unicode
 * property expressions (30-50 ms of every start), so a command whose output is JSON never loads
 * them (BaseCommand.init loads them for text output). Until then no line is wrapped.
 */
let layout: {stringWidth: (s: string) => number; wrapAnsi: typeof import('wrap-ansi').default} | undefined

/** Load the text layout libraries (once): before text output laid out at a width. */
export async function loadTextLayout(): Promise<void> {
  if (layout) return
  const [sw, wa] = await Promise.all([import('string-width'), import('wrap-ansi')])
  layout = {stringWidth: sw.default, wrapAnsi: wa.default}
}

/** Columns to wrap at: $COLUMNS, else the terminal's; undefined (no wrapping, lines whole for grep) when stdout is not a terminal. */
export function terminalWidth(stream: NodeJS.WriteStream = process.stdout): number | undefined {
  const env = Number(process.env.COLUMNS)
  if (Number.isInteger(env) && env > 0) return env
  return stream.isTTY && stream.columns > 0 ? stream.columns : undefined
}

/** What a line takes on screen (colour codes and wide characters counted as the terminal does). */
export const displayWidth = (line: string): number => (layout ? layout.stringWidth(line) : line.length)

/** Narrowest text column kept: below it a deep indent would leave a word a line. */
const MIN_TEXT = 20

/**
 * One line wrapped at `width`: the first part at the line's own indent, the
 * rest at `hang` (deeper, so that a wrapped line reads as one item).
 */
export function wrapLine(line: string, width = terminalWidth(), hang?: string): string {
  if (!layout || width === undefined || width <= 0 || displayWidth(line) <= width) return line
  const lead = /^ */.exec(line)![0]
  const rest = hang ?? `${lead}  `
  const text = Math.max(MIN_TEXT, width - Math.max(lead.length, rest.length))
  const [first = '', ...more] = layout.wrapAnsi(line.slice(lead.length), text, {hard: true, trim: true}).split('\n')
  return [lead + first, ...more.map((l) => rest + l)].join('\n')
}

/** Every line of a text wrapped, each continuation two columns deeper than its line. */
export function wrapText(text: string, width = terminalWidth()): string {
  if (width === undefined) return text
  return text
    .split('\n')
    .map((l) => wrapLine(l, width))
    .join('\n')
}

/** Words filled into lines of `columns` (a word wider than that is cut), as wrap-ansi's hard mode does; one line when not loaded. */
export function fillWords(text: string, columns: number): string {
  const words = text.split(/\s+/).filter(Boolean).join(' ')
  return layout ? layout.wrapAnsi(words, columns, {hard: true, trim: true}) : words
}

/**
 * A shell command wrapped so that it still pastes as one: broken only between
 * words outside quotes, each line but the last ending in ` \`. A comment goes
 * on as a comment. A single word wider than the line stays whole.
 */
export function wrapCommand(line: string, width = terminalWidth()): string {
  if (!layout || width === undefined || width <= 0 || displayWidth(line) <= width) return line
  const lead = /^ */.exec(line)![0]
  const body = line.slice(lead.length)
  if (body.startsWith('#')) return wrapLine(line, width, `${lead}# `)
  const words = shellWords(body)
  const lines: string[] = []
  let current = ''
  const room = (first: boolean): number => width - (first ? lead.length : lead.length + 4) - 2
  for (const w of words) {
    if (current && displayWidth(current) + 1 + displayWidth(w) > room(lines.length === 0)) {
      lines.push(current)
      current = w
    } else current = current ? `${current} ${w}` : w
  }
  if (current) lines.push(current)
  return lines.map((l, i) => `${i === 0 ? lead : `${lead}    `}${l}${i < lines.length - 1 ? ' \\' : ''}`).join('\n')
}

/** Words split at spaces outside single quotes (netctl quotes every value with shq, which only uses single quotes). */
function shellWords(s: string): string[] {
  const words: string[] = []
  let word = ''
  let quoted = false
  for (const ch of s) {
    if (ch === "'") quoted = !quoted
    if (ch === ' ' && !quoted) {
      if (word) words.push(word)
      word = ''
    } else word += ch
  }
  if (word) words.push(word)
  return words
}
