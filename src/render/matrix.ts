/**
 * `netctl matrix`: the reachability matrix as a grid of one character per
 * pair (50 nodes fit an 80-column terminal), as a summary grouped by cause
 * beyond that, as an SVG heat map (alone, or in an HTML page), and the
 * differential matrix as the changed cells with the state that explains them.
 */
import type {SectionDiff} from '../analyze/diff.js'
import {
  failureGroups,
  isPartial,
  type Matrix,
  type MatrixCell,
  type MatrixDiff,
  type MatrixEndpoint,
  type MatrixServiceCell,
  type MatrixUnreached,
  serviceFailureGroups,
} from '../analyze/matrix.js'
import type {Disposition} from '../model/trace.js'
import {plural, printable} from '../util/text.js'

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

function cellIndex(m: Matrix): Map<string, MatrixCell> {
  return new Map(m.cells.map((c) => [`${c.src}\u0000${c.dst}`, c]))
}

function cause(c: {disposition: Disposition; direction?: string; stoppedAt?: string; findings: string[]}): string {
  const way = c.direction === 'reply' ? ' on the reply' : ''
  return `${c.disposition}${way}${c.stoppedAt ? ` at ${c.stoppedAt}` : ''}${c.findings.length ? ` (${c.findings.join(', ')})` : ''}`
}

function serviceCellIndex(m: Matrix): Map<string, MatrixServiceCell> {
  return new Map((m.serviceCells ?? []).map((c) => [`${c.src}\u0000${c.service}`, c]))
}

/** A Service cell's character: `.` every endpoint reached, the disposition's letter none, in lower case some. */
function serviceMark(c: MatrixServiceCell | undefined): string {
  const mark = MARKS[c?.disposition ?? 'INSUFFICIENT_INFO'].mark
  return c && isPartial(c) ? mark.toLowerCase() : mark
}

/** `2 of 3 endpoints`, or why there is no count to give. */
function reachText(c: {disposition: Disposition; reached: number; total: number}): string {
  if (c.total === 0) return 'no endpoint the rules send to'
  return `${c.reached} of ${plural(c.total, 'endpoint')}`
}

const unreachedText = (u: MatrixUnreached): string =>
  `${u.pod ?? u.ip}${u.pod ? ` (${u.ip}${u.node ? ` on ${u.node}` : ''})` : u.node ? ` (on ${u.node})` : ''} ${u.disposition}${u.direction === 'reply' ? ' on the reply' : ''}`

/** A Service cell's cause: how many endpoints, which were not reached and how, where the shown walk stopped. */
function serviceCause(c: {
  disposition: Disposition
  direction?: string
  stoppedAt?: string
  findings: string[]
  reached: number
  total: number
  unreached: MatrixUnreached[]
}): string {
  if (c.disposition === 'DELIVERED') return `DELIVERED (${reachText(c)})`
  const missed = c.unreached.length > 0 ? `; not reached: ${c.unreached.map(unreachedText).join(', ')}` : ''
  return `${reachText(c)}${missed}; ${cause(c)}`
}

/**
 * The grid: a row per source, a column per destination (numbered down the
 * header), `.` delivered; with Services their columns after a gap, numbered on.
 */
function grid(m: Matrix): string[] {
  const cells = cellIndex(m)
  const svcCells = serviceCellIndex(m)
  const services = m.services ?? []
  const n = m.endpoints.length
  const digits = String(n + services.length).length
  const used = new Set([...m.cells, ...(m.serviceCells ?? [])].map((c) => c.disposition))
  const legend = (Object.keys(MARKS) as Disposition[]).filter((d) => used.has(d)).map((d) => `${MARKS[d].mark} ${d}`)
  const columns =
    services.length > 0
      ? [
          `Service columns (${services.length > 0 && (m.serviceCells ?? []).some(isPartial) ? 'lower case: some endpoints reached, not all; ' : ''}the Service's ClusterIP, every endpoint walked):`,
          ...services.map((s, j) =>
            printable(
              `${String(n + j + 1).padStart(digits)} ${s.id}${s.portName ? ` (${s.portName})` : ''} ${s.clusterIP}`,
            ),
          ),
        ]
      : []
  const grid = gridLines(
    m.endpoints,
    m.scope,
    (src, dst) => MARKS[cells.get(`${src.id}\u0000${dst.id}`)?.disposition ?? 'INSUFFICIENT_INFO'].mark,
    legend,
    services.length > 0
      ? {count: services.length, markOf: (src, j) => serviceMark(svcCells.get(`${src.id}\u0000${services[j]!.id}`))}
      : undefined,
  )
  return [...grid, ...columns]
}

/**
 * A grid of one mark per (source, destination) pair of endpoints, labelled by node (scope node) or pod, and its
 * legend; `extra` columns (the matrix's Services) follow the endpoints', numbered on from them.
 */
export function gridLines(
  endpoints: readonly MatrixEndpoint[],
  scope: Matrix['scope'],
  markOf: (src: MatrixEndpoint, dst: MatrixEndpoint) => string,
  legend: readonly string[],
  extra?: {count: number; markOf: (src: MatrixEndpoint, column: number) => string},
): string[] {
  const n = endpoints.length
  const more = extra?.count ?? 0
  const label = (i: number): string =>
    printable(`${String(i + 1).padStart(String(n).length)} ${scope === 'node' ? endpoints[i]!.node : endpoints[i]!.id}`)
  const width = Math.max(...endpoints.map((_e, i) => label(i).length))
  const digits = String(n + more).length
  const num = (k: number, d: number): string => String(k + 1).padStart(digits)[d]!
  const extraColumns = Array.from({length: more}, (_x, j) => j)
  const header: string[] = []
  for (let d = 0; d < digits; d++) {
    const svc = more > 0 ? ` ${extraColumns.map((j) => num(n + j, d)).join('')}` : ''
    header.push(`${' '.repeat(width)}  ${endpoints.map((_e, j) => num(j, d)).join('')}${svc}`.trimEnd())
  }
  const rows = endpoints.map((src, i) => {
    const marks = endpoints.map((dst, j) => (i === j ? ' ' : markOf(src, dst))).join('')
    const svc = extra && more > 0 ? ` ${extraColumns.map((j) => extra.markOf(src, j)).join('')}` : ''
    return `${label(i).padEnd(width)}  ${marks}${svc}`
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

function serviceGroupsText(m: Matrix, max: number): string[] {
  const out: string[] = []
  for (const g of serviceFailureGroups(m.serviceCells ?? [])) {
    out.push(printable(`${g.service} from ${plural(g.sources.length, 'pod')}: ${serviceCause(g)}`))
    out.push(...g.sources.slice(0, max).map((src) => printable(`  ${src}`)))
    if (g.sources.length > max) out.push(`  and ${g.sources.length - max} more`)
  }
  return out
}

export function matrixText(m: Matrix): string {
  const what =
    m.scope === 'node' ? `${plural(m.endpoints.length, 'node')} (one pod each)` : plural(m.endpoints.length, 'pod')
  const sc = m.serviceCounts
  const head = [
    printable(`reachability of ${m.cluster} (${m.backend}): ${what}`),
    `${plural(m.counts.pairs, 'pair')}: ${m.counts.delivered} delivered, ${m.counts.failed} failed`,
    ...(m.services === undefined
      ? []
      : m.services.length === 0
        ? [
            'no Service with a ClusterIP in the snapshot: no Service column (an inventory lists Services under services:)',
          ]
        : [
            `${plural(m.services.length, 'Service port')}, ${plural(sc?.cells ?? 0, 'cell')}: ${sc?.delivered ?? 0} delivered, ${sc?.partial ?? 0} partial (some endpoints reached), ${sc?.failed ?? 0} failed`,
          ]),
  ].join('\n')
  const big = m.endpoints.length > GRID_MAX
  if (m.endpoints.length < 2 && !(m.services && m.services.length > 0 && m.endpoints.length > 0))
    return `${head}\n\nfewer than two pods: no pair to walk`
  const body = big ? [] : grid(m)
  const failing = m.counts.failed > 0 ? ['', 'failing pairs, by cause:', ...groupsText(m, big ? 5 : 10)] : []
  const svcFailing =
    sc && sc.partial + sc.failed > 0
      ? ['', 'Services not reached from every pod, by cause:', ...serviceGroupsText(m, big ? 5 : 10)]
      : []
  return [head, '', ...body, ...failing, ...svcFailing].join('\n')
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
  const svcCells = serviceCellIndex(m)
  const services = m.services ?? []
  const n = m.endpoints.length
  // Service columns after a one-square gap
  const columns = n + (services.length > 0 ? services.length + 1 : 0)
  const size = columns <= 20 ? 24 : columns <= 60 ? 12 : 6
  const names = m.endpoints.map((e) => (m.scope === 'node' ? e.node : e.id))
  const margin = Math.min(200, 8 + 7 * Math.max(4, ...names.map((x) => x.length), ...services.map((x) => x.id.length)))
  const side = margin + n * size + 10
  const sc = m.serviceCounts
  const foot = [
    `rows: from, columns: to — ${m.counts.delivered} delivered, ${m.counts.failed} failed`,
    ...(sc ? [`Services: ${sc.delivered} delivered, ${sc.partial} partial, ${sc.failed} failed`] : []),
  ]
  // the last column's label, rotated, reaches right by half its length; the footer as long as it is
  const lastLabel = services.at(-1)?.id ?? names.at(-1) ?? ''
  const width = Math.max(
    margin + columns * size + Math.ceil(3.5 * Math.min(28, lastLabel.length)) + 10,
    8 + 7 * Math.max(...foot.map((l) => l.length)),
  )
  const height = side + 14 + 16 * foot.length
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="${Math.max(8, Math.min(12, size - 2))}">`,
    `<title>${xml(`reachability of ${m.cluster} (${m.backend}): ${m.counts.delivered} of ${m.counts.pairs} pairs delivered`)}</title>`,
  ]
  const columnLabel = (x: number, name: string): void => {
    out.push(`<text x="${x}" y="${margin - 4}" transform="rotate(-60 ${x} ${margin - 4})">${xml(name)}</text>`)
  }
  names.forEach((name, i) => {
    const y = margin + i * size + size * 0.75
    out.push(`<text x="${margin - 4}" y="${y}" text-anchor="end">${xml(name)}</text>`)
    columnLabel(margin + i * size + size * 0.75, name)
  })
  services.forEach((svc, j) => columnLabel(margin + (n + 1 + j) * size + size * 0.75, svc.id))
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
    services.forEach((svc, j) => {
      const c = svcCells.get(`${src.id}\u0000${svc.id}`)
      out.push(...serviceSquare(src.id, svc.id, c, margin + (n + 1 + j) * size, margin + i * size, size))
    })
  })
  foot.forEach((line, k) => out.push(`<text x="4" y="${side + 20 + 16 * k}">${xml(line)}</text>`))
  out.push('</svg>')
  return out.join('\n')
}

/**
 * A Service cell's square: green when every endpoint is reached; else the
 * disposition's colour crossed, and when some endpoints are reached a green
 * band at the bottom as high as their share and a single stroke instead of the cross.
 */
function serviceSquare(src: string, svc: string, c: MatrixServiceCell | undefined, x: number, y: number, size: number) {
  const d = c?.disposition ?? 'INSUFFICIENT_INFO'
  const partial = c !== undefined && isPartial(c)
  const state = d === 'DELIVERED' ? '' : partial ? ' partial failed' : ' failed'
  const tip = `${src} → ${svc}: ${c ? serviceCause(c) : d}`
  const out = [
    `<g class="cell service${state}" data-src="${xml(src)}" data-service="${xml(svc)}" data-disposition="${d}" data-reached="${c?.reached ?? 0}" data-total="${c?.total ?? 0}">`,
    `<rect x="${x}" y="${y}" width="${size - 1}" height="${size - 1}" fill="${MARKS[d].color}"><title>${xml(tip)}</title></rect>`,
  ]
  if (partial) {
    const band = Math.max(1, Math.round(((size - 1) * c.reached) / Math.max(1, c.total)))
    out.push(
      `<rect class="reached" x="${x}" y="${y + size - 1 - band}" width="${size - 1}" height="${band}" fill="${MARKS.DELIVERED.color}"/>`,
      `<path d="M${x + size - 3} ${y + 2}L${x + 2} ${y + size - 3}" stroke="#fff" stroke-width="1.5"/>`,
    )
  } else if (d !== 'DELIVERED') {
    out.push(
      `<path d="M${x + 2} ${y + 2}L${x + size - 3} ${y + size - 3}M${x + size - 3} ${y + 2}L${x + 2} ${y + size - 3}" stroke="#fff" stroke-width="1.5"/>`,
    )
  }
  out.push('</g>')
  return out
}

/** The SVG in a page, with the legend and the failing pairs by cause. */
export function matrixHtml(m: Matrix): string {
  const used = [...new Set([...m.cells, ...(m.serviceCells ?? [])].map((c) => c.disposition))]
  const legend = used.map((d) => `<li><span style="background:${MARKS[d].color}"></span>${d}</li>`).join('')
  const groups = failureGroups(m.cells)
    .map(
      (g) =>
        `<li>${xml(`${plural(g.pairs.length, 'pair')}: ${cause(g)}`)}<ul>${g.pairs.map((p) => `<li>${xml(`${p.src} → ${p.dst}`)}</li>`).join('')}</ul></li>`,
    )
    .join('')
  const svcGroups = serviceFailureGroups(m.serviceCells ?? [])
    .map(
      (g) =>
        `<li>${xml(`${g.service} from ${plural(g.sources.length, 'pod')}: ${serviceCause(g)}`)}<ul>${g.sources.map((src) => `<li>${xml(src)}</li>`).join('')}</ul></li>`,
    )
    .join('')
  const sc = m.serviceCounts
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${xml(`netctl matrix: ${m.cluster}`)}</title>
<style>body{font-family:sans-serif;margin:1em}ul.legend{list-style:none;padding:0}ul.legend li{display:inline-block;margin-right:1em}ul.legend span{display:inline-block;width:1em;height:1em;margin-right:.3em;vertical-align:middle}</style>
</head><body>
<h1>${xml(`${m.cluster} (${m.backend})`)}</h1>
<p>${xml(`${m.counts.pairs} pairs: ${m.counts.delivered} delivered, ${m.counts.failed} failed`)}</p>
${sc ? `<p>${xml(`${sc.cells} Service cells: ${sc.delivered} delivered, ${sc.partial} partial (a green band: the share of endpoints reached), ${sc.failed} failed`)}</p>` : ''}
<ul class="legend">${legend}</ul>
${matrixSvg(m)}
${groups ? `<h2>Failing pairs, by cause</h2><ul>${groups}</ul>` : ''}
${svcGroups ? `<h2>Services not reached from every pod, by cause</h2><ul>${svcGroups}</ul>` : ''}
</body></html>`
}

/** The differential matrix: each changed cell, before → after, and the changed lines on the nodes its walks cross. */
export function matrixDiffText(d: MatrixDiff): string {
  const svc = d.changedServices
  const head = printable(
    `reachability of ${d.cluster}: ${d.before.counts.delivered} → ${d.after.counts.delivered} of ${d.after.counts.pairs} pairs delivered; ${plural(d.changed.length, 'pair')} changed${svc ? `, ${plural(svc.length, 'Service cell')}` : ''}`,
  )
  const out = [head]
  const sectionLines = (s: SectionDiff, indent: string): string[] => [
    printable(`${indent}${s.section}`),
    ...s.removed.map((l) => printable(`${indent}- ${l}`)),
    ...s.added.map((l) => printable(`${indent}+ ${l}`)),
  ]
  const explain = (changes: MatrixDiff['changed'][number]['changes'], objects?: SectionDiff): void => {
    if (objects) out.push(...sectionLines(objects, '  '))
    if (changes.length === 0 && !objects)
      out.push('  no state changed on the nodes its walks cross (what changed is elsewhere: netctl diff shows it all)')
    for (const n of changes) {
      out.push(printable(`  node ${n.node}`))
      for (const s of n.sections) out.push(...sectionLines(s, '    '))
    }
  }
  for (const c of d.changed) {
    out.push('', printable(`${c.src} → ${c.dst}: ${cause(c.before)} → ${cause(c.after)}`))
    explain(c.changes)
  }
  for (const c of svc ?? []) {
    out.push('', printable(`${c.src} → ${c.service}: ${serviceCause(c.before)} → ${serviceCause(c.after)}`))
    explain(c.changes, c.objects)
  }
  return out.join('\n')
}
