/**
 * What a backend switch's what-if predicts, in words: the pairs it would break. Pure over the
 * what-if's result, and apart from what-if.ts (which walks every pair, so imports the walker): an
 * exit code's line (src/services/outcome.ts) loads no walker for it.
 */
import type {WhatIf} from './what-if.js'

/** The pairs the switch would stop delivering: the matrix's (small packets), as src → dst with the disposition after. */
export function brokenPairs(w: WhatIf): Array<{src: string; dst: string; disposition: string}> {
  return w.matrix.changed
    .filter((c) => c.before.disposition === 'DELIVERED' && c.after.disposition !== 'DELIVERED')
    .map((c) => ({src: c.src, dst: c.dst, disposition: c.after.disposition}))
}

const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`

/**
 * One line saying what the switch would break and why, or undefined when the
 * what-if predicts no break: the pairs that stop reaching each other (and the
 * routes the kernel would refuse), then the pairs whose full-size packets die.
 */
export function breakLine(w: WhatIf): string | undefined {
  const parts: string[] = []
  const broken = brokenPairs(w)
  if (broken.length > 0) {
    const why = [...new Set(broken.map((b) => b.disposition))].join('/')
    let line = `${count(broken.length, 'pod pair')} would stop reaching each other (${why}: ${broken
      .slice(0, 4)
      .map((b) => `${b.src} -> ${b.dst}`)
      .join(', ')}${broken.length > 4 ? ', ...' : ''})`
    if (w.refused.length > 0) {
      const reasons = [...new Set(w.refused.map((r) => r.why))]
      line += `: the kernel refuses ${count(w.refused.length, 'route')} of the plan (${reasons.slice(0, 2).join('; ')}${reasons.length > 2 ? '; ...' : ''})`
    }
    parts.push(line)
  }
  if (w.mtu.broken.length > 0) {
    const sizes = [...new Set(w.mtu.broken.map((b) => b.size))].join('/')
    const at = [...new Set(w.mtu.broken.map((b) => (b.dev ? `${b.dev} mtu ${b.mtu ?? '?'}` : undefined)))]
      .filter((x) => x !== undefined)
      .slice(0, 2)
      .join(', ')
    parts.push(
      `full-size packets (${sizes} bytes, DF) would die on ${count(w.mtu.broken.length, 'pod pair')}${at ? ` at ${at}` : ''}: pods keep their MTU until recreated (MTU_MISMATCH)`,
    )
  }
  return parts.length > 0 ? parts.join('; ') : undefined
}
