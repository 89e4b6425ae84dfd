/**
 * `netctl diff`: the result as JSON (schemas/diff.schema.json) and as text, in
 * the form of a unified diff: a heading per node and per listing, `-` for a
 * line only before has, `+` for one only after has.
 */
import type {SectionDiff} from '../analyze/diff.js'
import type {DiffResult} from '../services/diff.js'
import {colors, printable} from './color.js'

export function diffJson(d: DiffResult): DiffResult {
  return d
}

function sectionText(s: SectionDiff, indent: string, c: ReturnType<typeof colors>): string[] {
  return [
    `${indent}${c.bold(printable(s.section))}`,
    ...s.removed.map((l) => c.red(`${indent}- ${printable(l)}`)),
    ...s.added.map((l) => c.green(`${indent}+ ${printable(l)}`)),
  ]
}

export function diffText(d: DiffResult, c = colors()): string {
  const side = (s: DiffResult['before']): string => printable(`${s.file ?? s.cluster} (${s.startedAt})`)
  const out = [`--- ${side(d.before)}`, `+++ ${side(d.after)}`]
  if (d.changes === 0 && d.nodeDiffs.length === 0) {
    out.push(
      '',
      `no change${d.all ? '' : ' (counters, conntrack and neighbour ageing are ignored; --all compares them too)'}`,
    )
    return out.join('\n')
  }
  const names = (what: string, n: {added: string[]; removed: string[]}): string[] => [
    ...(n.added.length ? [c.green(printable(`${what} added: ${n.added.join(', ')}`))] : []),
    ...(n.removed.length ? [c.red(printable(`${what} gone: ${n.removed.join(', ')}`))] : []),
  ]
  const summary = [...names('nodes', d.nodes), ...names('pods', d.pods)]
  if (summary.length) out.push('', ...summary)
  if (d.cluster.length) {
    out.push('', c.bold('cluster'))
    for (const s of d.cluster) out.push(...sectionText(s, '  ', c))
  }
  for (const n of d.nodeDiffs) {
    const why =
      n.status === 'uncollected'
        ? ` (not collected ${n.uncollected?.join(' and ')}: nothing to compare)`
        : n.status === 'changed'
          ? ''
          : ` (${n.status})`
    out.push('', c.bold(printable(`node ${n.node}${why}`)))
    for (const s of n.sections) out.push(...sectionText(s, '  ', c))
  }
  out.push(
    '',
    `${d.changes} changed line${d.changes === 1 ? '' : 's'}${d.all ? '' : ' (counters, conntrack and neighbour ageing ignored; --all compares them too)'}`,
  )
  return out.join('\n')
}
