/**
 * A duration as kubectl's --timeout takes one: `0`, `30s`, `2m`, `1h30m`,
 * `500ms`; a bare number is seconds. Returns milliseconds, or undefined when
 * the text is not a duration.
 */
import {UsageError} from '../errors.js'

const UNIT_MS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000}

export function parseDuration(text: string): number | undefined {
  const s = text.trim()
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000)
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(s)) return undefined
  let ms = 0
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!
  return Math.round(ms)
}

/** Milliseconds as a person reads them: 45s, 2m, 1m30s. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`
}

/** A duration flag's value (src/flags.ts lockTimeoutFlag) in milliseconds, or a usage error (oclif names the flag before it). */
export function durationMs(text: string): number {
  const ms = parseDuration(text)
  if (ms === undefined) throw new UsageError(`${text}: expected a duration such as 0, 30s, 5m or 1h`)
  return ms
}
