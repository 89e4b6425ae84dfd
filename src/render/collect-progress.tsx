import {Box, render, Text} from 'ink'

import type {NodePhase, NodeProgress} from '../collect/collect.js'
import type {Inventory} from '../model/inventory.js'
import type {CollectDisplay} from '../services/collect.js'
import {collectFooter} from './collect.js'

/** One line per node while `netctl collect` runs (stderr, TTY only). */
export interface ProgressRow {
  node: string
  phase: NodePhase
  target?: string
  ms?: number
  message?: string
}

const MARK: Record<NodePhase, {mark: string; color?: string}> = {
  waiting: {mark: '·', color: 'gray'},
  probing: {mark: '…', color: 'cyan'},
  done: {mark: '✓', color: 'green'},
  partial: {mark: '!', color: 'yellow'},
  unreachable: {mark: '✗', color: 'red'},
}

/** Rows shown at most; finished ones beyond this are counted, not listed. */
const MAX_ROWS = 24

const secs = (ms: number | undefined): string => (ms === undefined ? '' : `${(ms / 1000).toFixed(1)}s`)

/** Colour props only when colour is wanted: ink's chalk does not read NO_COLOR, and a stream that is not a terminal gets none. */
function tone(
  plain: boolean,
  props: {color?: string; dimColor?: boolean; bold?: boolean},
): {color?: string; dimColor?: boolean; bold?: boolean} {
  return plain ? {} : props
}

export function CollectProgress({
  title,
  rows,
  footer,
  plain = false,
}: {
  title: string
  rows: ProgressRow[]
  footer?: string
  plain?: boolean
}) {
  const waiting = rows.filter((r) => r.phase === 'waiting').length
  const active = rows.filter((r) => r.phase !== 'waiting')
  // problems and running nodes first: they are what a person watches for
  const order: NodePhase[] = ['unreachable', 'partial', 'probing', 'done', 'waiting']
  const shown = [...active].sort((a, b) => order.indexOf(a.phase) - order.indexOf(b.phase)).slice(0, MAX_ROWS)
  const hidden = active.length - shown.length
  const width = Math.max(4, ...rows.map((r) => r.node.length))
  const finished = rows.filter((r) => r.phase === 'done' || r.phase === 'partial' || r.phase === 'unreachable').length
  return (
    <Box flexDirection="column">
      <Text {...tone(plain, {bold: true})}>{title}</Text>
      {shown.map((r) => (
        <Box key={r.node}>
          <Text {...tone(plain, {color: MARK[r.phase].color})}>{`  ${MARK[r.phase].mark} `}</Text>
          <Text>{r.node.padEnd(width)}</Text>
          <Text {...tone(plain, {dimColor: true})}>{`  ${secs(r.ms).padStart(5)}`}</Text>
          {r.message ? <Text {...tone(plain, {color: MARK[r.phase].color})}>{`  ${r.message}`}</Text> : null}
        </Box>
      ))}
      {hidden > 0 ? <Text {...tone(plain, {dimColor: true})}>{`  ... ${hidden} more`}</Text> : null}
      {/* one summary line: the running count while it runs, the footer (which says it all) once it is done */}
      {footer ? (
        <Text>{footer}</Text>
      ) : (
        <Text
          {...tone(plain, {dimColor: true})}
        >{`  ${finished}/${rows.length} finished${waiting > 0 ? `, ${waiting} waiting` : ''}`}</Text>
      )}
    </Box>
  )
}

export interface ProgressHandle {
  /** more nodes get rows (a trace learns which nodes it needs as it walks) */
  addNodes: (nodes: string[]) => void
  update: (p: NodeProgress) => void
  finish: (footer: string) => void
}

/** Live per-node progress on a stream (stderr); `finish` leaves the last frame on screen. */
export function renderCollectProgress(
  title: string,
  nodes: string[],
  stream: NodeJS.WriteStream = process.stderr,
): ProgressHandle {
  const rows = new Map<string, ProgressRow>(nodes.map((n) => [n, {node: n, phase: 'waiting'}]))
  const plain = 'NO_COLOR' in process.env || !stream.isTTY
  const view = (footer?: string) => (
    <CollectProgress title={title} rows={[...rows.values()]} plain={plain} {...(footer ? {footer} : {})} />
  )
  const app = render(view(), {stdout: stream, patchConsole: false, exitOnCtrlC: true})
  return {
    addNodes(more) {
      for (const n of more) if (!rows.has(n)) rows.set(n, {node: n, phase: 'waiting'})
      app.rerender(view())
    },
    update(p) {
      const row = rows.get(p.node)
      if (!row) return
      rows.set(p.node, {...row, ...p})
      app.rerender(view())
    },
    finish(footer) {
      app.rerender(view(footer))
      app.unmount()
    },
  }
}

/** collect's display: a row per node of the cluster, and the footer the snapshot read makes. */
export function collectProgressDisplay(inventory: Inventory, parallel: number): CollectDisplay {
  const title = `collecting ${inventory.nodes.length} nodes of ${inventory.cluster.name} (${inventory.cluster.backend}), ${parallel} at a time`
  const progress = renderCollectProgress(
    title,
    inventory.nodes.map((n) => n.name),
  )
  return {
    update: progress.update,
    finish: (snapshot, written, collected) => progress.finish(collectFooter(snapshot, written, collected)),
  }
}
