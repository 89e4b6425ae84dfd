import {NODE_PARALLEL} from '../../defaults.js'
import {NetctlError} from '../../errors.js'
import type {InventoryNode} from '../../model/inventory.js'
import {createTransport} from '../../transport/index.js'
import type {Transport} from '../../transport/types.js'
import {onInterrupt} from '../../util/cleanup.js'
import {mapLimit} from '../../util/exec.js'
import {type NodeOps, opsEmpty} from '../plan/ops.js'
import type {ConfiguredBackend} from '../plan/types.js'
import {type RefusedLine, runBatch} from './batch.js'
import type {DaemonControl} from './daemons.js'

/**
 * Apply each node's ops through its transport, all nodes in parallel. A node
 * that fails (or an interrupt) stops the others at their next step; every
 * node that was touched is reported, so the caller can roll them back.
 */

/** Set by a failing node, Ctrl-C or SIGTERM; checked between steps. */
export interface Abort {
  aborted: boolean
  reason?: string
  /** the signal that stopped the run: it is the reason, whatever else it cut short on its way */
  signal?: NodeJS.Signals
}

export interface NodeApplyResult {
  node: string
  /** something on the node may have changed */
  touched: boolean
  ok: boolean
  error?: string
  /** stopped because another node failed or a signal came, not by a failure of its own */
  interrupted?: boolean
  steps: string[]
  /** a forced switch: the lines the kernel refused, as the what-if predicted */
  refused?: RefusedLine[]
}

export interface ApplyOptions {
  nodes: InventoryNode[]
  daemons?: DaemonControl
  /** the backend daemons are configured for */
  type: ConfiguredBackend
  abort: Abort
  /** a rollback runs to the end whatever happens */
  ignoreAbort?: boolean
  onStep?: (node: string, step: string) => void
  /** the run's transport to a node (default: a new one from the inventory's access) */
  transportFor?: (node: InventoryNode) => Transport
  /** a forced switch: per node, the add lines the what-if predicts the kernel refuses (they may fail) */
  refusable?: Record<string, string[]>
}

class Interrupted extends Error {}

export async function applyNode(ops: NodeOps, opts: ApplyOptions): Promise<NodeApplyResult> {
  const result: NodeApplyResult = {node: ops.node, touched: false, ok: false, steps: []}
  if (opsEmpty(ops)) return {...result, ok: true}
  const node = opts.nodes.find((n) => n.name === ops.node)
  if (!node) return {...result, error: `no node ${ops.node} in the inventory`}
  const checkpoint = (): void => {
    if (opts.abort.aborted && !opts.ignoreAbort) throw new Interrupted(opts.abort.reason ?? 'interrupted')
  }
  const step = (s: string): void => {
    result.steps.push(s)
    opts.onStep?.(ops.node, s)
  }
  const daemons = (): DaemonControl => {
    if (!opts.daemons) throw new NetctlError(`${ops.node}: netctl cannot run backend daemons on this cluster`)
    return opts.daemons
  }
  const transport = opts.transportFor ? opts.transportFor(node) : createTransport(node)
  try {
    checkpoint()
    result.touched = true
    for (const d of ops.stop) {
      step(`stop ${d}`)
      await daemons().stop(ops.node, d)
    }
    checkpoint()
    if (ops.addIp.length + ops.addBridge.length > 0) {
      step(`add: ip -batch (${ops.addIp.length} lines), bridge -batch (${ops.addBridge.length})`)
      const refusable = new Set(opts.refusable?.[ops.node] ?? [])
      const refused = await runBatch(ops.node, transport, ops.addIp, ops.addBridge, {refusable})
      if (refused.length > 0) {
        result.refused = refused
        step(`the kernel refused ${refused.length} line(s), as predicted: ${refused.map((x) => x.line).join('; ')}`)
      }
    }
    checkpoint()
    for (const d of ops.start) {
      step(`start ${d}`)
      await daemons().start(ops.node, d, opts.type)
    }
    for (const d of ops.reconfigure) {
      step(`reconfigure ${d}`)
      await daemons().reconfigure(ops.node, d, opts.type)
    }
    checkpoint()
    if (ops.removeIp.length + ops.removeBridge.length > 0) {
      step(`remove: ip -batch (${ops.removeIp.length} lines), bridge -batch (${ops.removeBridge.length})`)
      await runBatch(ops.node, transport, ops.removeIp, ops.removeBridge, {force: true})
    }
    result.ok = true
  } catch (error) {
    const message = (error as Error).message
    result.error = error instanceof Interrupted ? `stopped: ${message}` : message
    if (error instanceof Interrupted) result.interrupted = true
    if (!opts.abort.aborted) {
      opts.abort.aborted = true
      opts.abort.reason = `${ops.node} failed`
    }
  } finally {
    await transport.close().catch(() => {})
  }
  return result
}

export async function applyAll(all: NodeOps[], opts: ApplyOptions): Promise<NodeApplyResult[]> {
  return mapLimit(all, NODE_PARALLEL, (ops) => applyNode(ops, opts))
}

/**
 * Why a switch is undone. A signal comes first: Ctrl-C reaches the whole
 * process group, so the ip -batch or probe it kills fails too, and that
 * failure says nothing of why. Then a failure seen, then any other stop.
 */
export function whyStopped(abort: Abort, failure: string | undefined): string | undefined {
  if (abort.signal) return `interrupted by ${abort.signal}`
  return failure ?? (abort.aborted ? (abort.reason ?? 'interrupted') : undefined)
}

/**
 * Ctrl-C, SIGTERM or SIGHUP stop the switch at its next step and roll back.
 * Held on the process's cleanup stack above the transports the switch made
 * while planning, so the rollback runs while they are still open; the
 * command then ends on its own path (exit 4). Returns the function to call
 * once the switch has ended, rolled back or not.
 */
export function stopOnSignal(abort: Abort, say: (line: string) => void): () => void {
  let ended!: () => void
  const done = new Promise<void>((resolve) => (ended = resolve))
  const held = onInterrupt(
    'rolling the backend switch back',
    (sig) => {
      say(`${sig}: stopping the switch and rolling back`)
      abort.aborted = true
      abort.signal ??= sig
      abort.reason ??= `interrupted by ${sig}`
      return done
    },
    {ending: 'resume'},
  )
  return () => {
    held.release()
    ended()
  }
}
