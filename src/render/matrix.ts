/**
 * `netctl matrix`: the reachability matrix as a grid of one character per
 * pair (50 nodes fit an 80-column terminal), as a summary grouped by cause
 * beyond that, as an SVG heat map (alone, or in an HTML page), and the
 * differential matrix as the changed cells with the state that explains them.
 */
import {failureGroups, type Matrix, type MatrixCell, type MatrixDiff, type MatrixEndpoint} from '../analyze/matrix.js'
import type {Disposition} from '../model/trace.js'
import {printable} from '../util/text.js'

/** Up to this many endpoints the text is a grid; beyond, failing pairs grouped by cause. */
export const GRID_MAX = 50

/** One character per disposition, and the colour of its cell in the picture. */
export const MARKS: Record<Disposition, {mark: string; color: string}> = {
  DELIVERED: {mark: '.', color: '#2e9d4a'},
  NO_ROUTE: {mark: 'R', color: '#d7301f'},
  BLACKHOLE: {mark: 'B', color: '#990000'},
  NEIGHBOR_UNRESOLVED: {mark: 'N', color: '#ef6548'},
  FDB_MISS: {mark: 'F', color: '#fc8d59'},
  DECAP_REJECTED: {mark: 'V', color: '#e34a33'},
  DENIED: {mark: 'D', color: '#7a0177'},
  FORWARDING_DISABLED: {mark: 'X', color: '#b30000'},
  RP_FILTER_DROP: {mark: 'P', color: '#dd3497'},
  MTU_EXCEEDED: {mark: 'M', color: '#fdbb84'},
  LOOP: {mark: 'L', color: '#6a51a3'},
  INSUFFICIENT_INFO: {mark: '?', color: '#969696'},
  // only trace --probe gives it (the matrix walks the model alone), but the closed set has it
  UNDERLAY_DROP: {mark: 'U', color: '#8c2d04'},
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

function cellIndex(m: Matrix): Map<string, MatrixCell> {
  return new Map(m.cells.map((c) => [`${c.src}\u0000${c.dst}`, c]))
}

function cause(c: {disposition: Disposition; direction?: string; stoppedAt?: string; findings: string[]}): string {
  const way = c.direction === 'reply' ? ' on the reply' : ''
  return `${c.disposition}${way}${c.stoppedAt ? ` at ${c.stoppedAt}` : ''}${c.findings.length ? ` (${c.findings.join(', ')})` : ''}`
}

/** The grid: a row per source, a column per destination (numbered down the header), `.` delivered. */
function grid(m: Matrix): string[] {
  const cells = cellIndex(m)
  const used = new Set(m.cells.map((c) => c.disposition))
  const legend = (Object.keys(MARKS) as Disposition[]).filter((d) => used.has(d)).map((d) => `${MARKS[d].mark} ${d}`)
  return gridLines(
    m.endpoints,
    m.scope,
    (src, dst) => MARKS[cells.get(`${src.id}\u0000${dst.id}`)?.disposition ?? 'INSUFFICIENT_INFO'].mark,
    legend,
  )
}

/** A grid of one mark per (source, destination) pair of endpoints, labelled by node (scope node) or pod, and its legend. */
export function gridLines(
  endpoints: readonly MatrixEndpoint[],
  scope: Matrix['scope'],
  markOf: (src: MatrixEndpoint, dst: MatrixEndpoint) => string,
  legend: readonly string[],
): string[] {
  const n = endpoints.length
  const label = (i: number): string =>
    printable(`${String(i + 1).padStart(String(n).length)} ${scope === 'node' ? endpoints[i]!.node : endpoints[i]!.id}`)
  const width = Math.max(...endpoints.map((_e, i) => label(i).length))
  const digits = String(n).length
  const header: string[] = []
  for (let d = 0; d < digits; d++) {
    header.push(`${' '.repeat(width)}  ${endpoints.map((_e, j) => String(j + 1).padStart(digits)[d]).join('')}`)
  }
  const rows = endpoints.map((src, i) => {
    const marks = endpoints.map((dst, j) => (i === j ? ' ' : markOf(src, dst))).join('')
    return `${label(i).padEnd(width)}  ${marks}`
  })
  return [...header, ...rows, '', `rows: from, columns: to; ${legend.join('  ')}`]
}

function groupsText(m: Matrix, max: number): string[] {
  const out: string[] = []
  for (const g of failureGroups(m.cells)) {
    out.push(printable(`${plural(g.pairs.length, 'pair')}: ${cause(g)}`))
    const shown = g.pairs.slice(0, max).map((p) => `${p.src} → ${p.dst}`)
    out.push(...shown.map((l) => printable(`  ${l}`)))
    if (g.pairs.length > max) out.push(`  and ${g.pairs.length - max} more`)
  }
  return out
}

export function matrixText(m: Matrix): string {
  const what =
    m.scope === 'node' ? `${plural(m.endpoints.length, 'node')} (one pod each)` : plural(m.endpoints.length, 'pod')
  const head = [
    printable(`reachability of ${m.cluster} (${m.backend}): ${what}`),
    `${plural(m.counts.pairs, 'pair')}: ${m.counts.delivered} delivered, ${m.counts.failed} failed`,
  ].join('\n')
  if (m.endpoints.length < 2) return `${head}\n\nfewer than two pods: no pair to walk`
  const body = m.endpoints.length <= GRID_MAX ? grid(m) : []
  const failing =
    m.counts.failed > 0
      ? ['', 'failing pairs, by cause:', ...groupsText(m, m.endpoints.length <= GRID_MAX ? 10 : 5)]
      : []
  return [head, '', ...body, ...failing].join('\n')
}

const xml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/**
 * The heat map: a square per pair coloured by its disposition, a failing
 * square also crossed (so it reads without colour), each with its cause as a
 * tooltip; `data-disposition` on every cell.
 */
export function matrixSvg(m: Matrix): string {
  const cells = cellIndex(m)
  const n = m.endpoints.length
  const size = n <= 20 ? 24 : n <= 60 ? 12 : 6
  const names = m.endpoints.map((e) => (m.scope === 'node' ? e.node : e.id))
  const margin = Math.min(200, 8 + 7 * Math.max(4, ...names.map((x) => x.length)))
  const side = margin + n * size + 10
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${side}" height="${side + 30}" viewBox="0 0 ${side} ${side + 30}" font-family="monospace" font-size="${Math.max(8, Math.min(12, size - 2))}">`,
    `<title>${xml(`reachability of ${m.cluster} (${m.backend}): ${m.counts.delivered} of ${m.counts.pairs} pairs delivered`)}</title>`,
  ]
  names.forEach((name, i) => {
    const y = margin + i * size + size * 0.75
    out.push(`<text x="${margin - 4}" y="${y}" text-anchor="end">${xml(name)}</text>`)
    const x = margin + i * size + size * 0.75
    out.push(`<text x="${x}" y="${margin - 4}" transform="rotate(-60 ${x} ${margin - 4})">${xml(name)}</text>`)
  })
  m.endpoints.forEach((src, i) => {
    m.endpoints.forEach((dst, j) => {
      if (i === j) return
      const c = cells.get(`${src.id}\u0000${dst.id}`)
      const d = c?.disposition ?? 'INSUFFICIENT_INFO'
      const x = margin + j * size
      const y = margin + i * size
      const tip = `${src.id} → ${dst.id}: ${c ? cause(c) : d}`
      out.push(
        `<g class="cell${d === 'DELIVERED' ? '' : ' failed'}" data-src="${xml(src.id)}" data-dst="${xml(dst.id)}" data-disposition="${d}">`,
      )
      out.push(
        `<rect x="${x}" y="${y}" width="${size - 1}" height="${size - 1}" fill="${MARKS[d].color}"><title>${xml(tip)}</title></rect>`,
      )
      if (d !== 'DELIVERED')
        out.push(
          `<path d="M${x + 2} ${y + 2}L${x + size - 3} ${y + size - 3}M${x + size - 3} ${y + 2}L${x + 2} ${y + size - 3}" stroke="#fff" stroke-width="1.5"/>`,
        )
      out.push('</g>')
    })
  })
  out.push(
    `<text x="4" y="${side + 20}">${xml(`rows: from, columns: to — ${m.counts.delivered} delivered, ${m.counts.failed} failed`)}</text>`,
  )
  out.push('</svg>')
  return out.join('\n')
}

/** The SVG in a page, with the legend and the failing pairs by cause. */
export function matrixHtml(m: Matrix): string {
  const used = [...new Set(m.cells.map((c) => c.disposition))]
  const legend = used.map((d) => `<li><span style="background:${MARKS[d].color}"></span>${d}</li>`).join('')
  const groups = failureGroups(m.cells)
    .map(
      (g) =>
        `<li>${xml(`${plural(g.pairs.length, 'pair')}: ${cause(g)}`)}<ul>${g.pairs.map((p) => `<li>${xml(`${p.src} → ${p.dst}`)}</li>`).join('')}</ul></li>`,
    )
    .join('')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${xml(`netctl matrix: ${m.cluster}`)}</title>
<style>body{font-family:sans-serif;margin:1em}ul.legend{list-style:none;padding:0}ul.legend li{display:inline-block;margin-right:1em}ul.legend span{display:inline-block;width:1em;height:1em;margin-right:.3em;vertical-align:middle}</style>
</head><body>
<h1>${xml(`${m.cluster} (${m.backend})`)}</h1>
<p>${xml(`${m.counts.pairs} pairs: ${m.counts.delivered} delivered, ${m.counts.failed} failed`)}</p>
<ul class="legend">${legend}</ul>
${matrixSvg(m)}
${groups ? `<h2>Failing pairs, by cause</h2><ul>${groups}</ul>` : ''}
</body></html>`
}

/** The differential matrix: each changed cell, before → after, and the changed lines on the nodes its walks cross. */
export function matrixDiffText(d: MatrixDiff): string {
  const head = printable(
    `reachability of ${d.cluster}: ${d.before.counts.delivered} → ${d.after.counts.delivered} of ${d.after.counts.pairs} pairs delivered; ${plural(d.changed.length, 'pair')} changed`,
  )
  const out = [head]
  for (const c of d.changed) {
    out.push('', printable(`${c.src} → ${c.dst}: ${cause(c.before)} → ${cause(c.after)}`))
    if (c.changes.length === 0)
      out.push('  no state changed on the nodes its walks cross (what changed is elsewhere: netctl diff shows it all)')
    for (const n of c.changes) {
      out.push(printable(`  node ${n.node}`))
      for (const s of n.sections) {
        out.push(
          printable(`    ${s.section}`),
          ...s.removed.map((l) => printable(`    - ${l}`)),
          ...s.added.map((l) => printable(`    + ${l}`)),
        )
      }
    }
  }
  return out.join('\n')
}
