/**
 * `netctl check`: the result as JSON (schemas/check.schema.json) and as text
 * (a header, then the findings, errors first).
 */
import type {ProbeMatrix, ProbePair} from '../analyze/probe-matrix.js'
import type {ProbePoint} from '../model/trace.js'
import type {CheckResult} from '../services/check-result.js'
import {printable} from '../util/text.js'
import {findingsText} from './finding.js'
import {gridLines, MARKS} from './matrix.js'
import {terminalWidth, wrapLine} from './width.js'

export function checkJson(r: CheckResult): CheckResult {
  return r
}

export function checkText(r: CheckResult, allNodes: number): string {
  const scope =
    r.nodes.length === allNodes
      ? `${allNodes} node${allNodes === 1 ? '' : 's'}`
      : `${r.nodes.join(', ')} (of ${allNodes} nodes)`
  const missing = allNodes - r.collected
  const head = printable(
    `checked ${scope} of ${r.cluster.name} (${r.cluster.backend})${missing > 0 ? `; ${missing} not collected` : ''}`,
  )
  const probe = r.probe ? `\n\n${probeText(r.probe)}` : ''
  return `${wrapLine(head, terminalWidth())}${probe}\n\n${findingsText(r.findings)}`
}

/** A pair's mark in the probe's grid: `.` carried, the probed disposition's mark when lost, `!` the walk and the packet disagree, `-` not sent. */
function probeMark(p: ProbePair | undefined): string {
  if (!p || p.status === 'not-sent') return '-'
  if (p.verdict === 'model-disagrees') return '!'
  return p.status === 'carried' ? '.' : MARKS[p.disposition].mark
}

const at = (p: ProbePoint | null): string =>
  p ? `${p.node} ${p.interface} ${p.direction === 'rx' ? 'in' : 'out'}` : '-'

/** check --probe: which pods were used, the grid of which pairs carry pod traffic, and where each lost pair was lost. */
export function probeText(m: ProbeMatrix): string {
  const width = terminalWidth()
  const head = [
    `probe: ${m.counts.pairs} node pair${m.counts.pairs === 1 ? '' : 's'}: ${m.counts.carried} carried, ${m.counts.lost} lost${m.counts.notSent ? `, ${m.counts.notSent} not sent` : ''}`,
    wrapLine(printable(`sent: ${m.sends}`), width, '  '),
    wrapLine(printable(`pods: ${m.endpoints.map((e) => `${e.node} ${e.id} (${e.ip})`).join(', ')}`), width, '  '),
  ]
  if (m.endpoints.length < 2) return head.join('\n')
  const byPair = new Map(m.pairs.map((p) => [`${p.src}\u0000${p.dst}`, p]))
  const shown = new Set(m.pairs.map(probeMark))
  const legend = [
    ['.', 'carried'],
    ...m.pairs
      .filter((p) => p.status === 'lost' && p.verdict !== 'model-disagrees')
      .map((p) => [MARKS[p.disposition].mark, `lost: ${p.disposition}`]),
    ['!', 'MODEL_DISAGREES'],
    ['-', 'not sent'],
  ].filter(([mark], i, all) => shown.has(mark!) && all.findIndex(([x]) => x === mark) === i)
  const grid = gridLines(
    m.endpoints,
    'node',
    (src, dst) => probeMark(byPair.get(`${src.id}\u0000${dst.id}`)),
    legend.map(([mark, what]) => `${mark} ${what}`),
  )
  const lost = m.pairs
    .filter((p) => p.status !== 'carried')
    .map((p) =>
      wrapLine(
        printable(
          `  ${p.srcNode} → ${p.dstNode}: ${p.status === 'not-sent' ? (p.note ?? 'not sent') : `${[p.disposition, ...p.findings.filter((f) => f !== p.disposition)].join(', ')}, ${p.answered === null ? `${p.sent} sent` : `${p.answered} of ${p.sent} answered`}; last seen ${at(p.lastSeen)}, not seen ${at(p.firstMissing)}`}`,
        ),
        width,
        '    ',
      ),
    )
  return [...head, '', ...grid, ...(lost.length ? ['', 'pairs not carried:', ...lost] : [])].join('\n')
}
