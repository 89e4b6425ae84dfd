import {render} from 'ink'

import type {NodeProgress} from '../collect/collect.js'
import {CollectProgress, type ProgressHandle, type ProgressRow} from './collect-progress.js'

/** The collect display, for a trace that learns which nodes it needs as it walks. */
export interface TraceProgressHandle extends ProgressHandle {
  /** a new collection round: these nodes get rows */
  addNodes: (nodes: string[]) => void
}

/**
 * Live per-node progress while `netctl trace` collects (stderr, TTY only):
 * the same rows as `netctl collect`, but nodes join as the walk asks for them.
 */
export function renderTraceProgress(title: string, stream: NodeJS.WriteStream = process.stderr): TraceProgressHandle {
  const rows = new Map<string, ProgressRow>()
  const view = (footer?: string) => <CollectProgress title={title} rows={[...rows.values()]} {...(footer ? {footer} : {})} />
  const app = render(view(), {stdout: stream, patchConsole: false, exitOnCtrlC: true})
  return {
    addNodes(nodes) {
      for (const n of nodes) if (!rows.has(n)) rows.set(n, {node: n, phase: 'waiting'})
      app.rerender(view())
    },
    update(p: NodeProgress) {
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
