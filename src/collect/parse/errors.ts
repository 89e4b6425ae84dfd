/**
 * A probe section whose text a parser could not make sense of. The collector
 * turns it into that section's status `error` (with this message); the rest of
 * the node still parses.
 */
export class ParseError extends Error {
  constructor(
    readonly section: string,
    message: string,
    /** 1-based line of the input where it went wrong, when known */
    readonly line?: number,
  ) {
    super(line === undefined ? `${section}: ${message}` : `${section}: line ${line}: ${message}`)
    this.name = 'ParseError'
  }
}

/** Parse a JSON array the way iproute2 prints it; empty output is an empty list (older iproute2 prints nothing). */
export function jsonArray(section: string, text: string): Array<Record<string, unknown>> {
  const t = text.trim()
  if (t === '') return []
  let value: unknown
  try {
    value = JSON.parse(t)
  } catch (error) {
    const msg = (error as Error).message
    throw new ParseError(section, `invalid JSON (${msg.length > 120 ? `${msg.slice(0, 120)}...` : msg})`)
  }
  if (!Array.isArray(value))
    throw new ParseError(section, `expected a JSON array, got ${value === null ? 'null' : typeof value}`)
  return value.map((v, i) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      throw new ParseError(section, `entry ${i} is not an object`)
    return v as Record<string, unknown>
  })
}

export const str = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined
export const num = (v: unknown): number | undefined => {
  if (typeof v === 'number' && Number.isFinite(v)) return v
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v)
  return undefined
}
export const strList = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : []
