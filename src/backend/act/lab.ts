import {NetctlError} from '../../errors.js'
import {labBackend, labDaemon, type LabNodeDaemon} from '../../lab/backends/index.js'
import {nodeFiles, writeNodeFiles} from '../../lab/files.js'
import {writeInventory} from '../../lab/inventory.js'
import {recordPath, saveRecord} from '../../lab/state.js'
import {pingPod, reachabilityPairs} from '../../lab/status.js'
import {LAB_BACKEND_MODULES, type LabBackendName, type LabNode, type LabPlan, type LabRecord} from '../../lab/types.js'
import {mapLimit} from '../../util/exec.js'
import {sleep} from '../../util/wait.js'
import type {ConfiguredBackend, Daemon} from '../plan/types.js'
import type {DaemonControl, ReachabilityCheck} from './daemons.js'

/**
 * `backend set` on a lab: the lab's backend registry starts, stops and
 * reconfigures the daemons (socat + the udp forwarder, BIRD), and the lab's
 * record, inventory and node files are rewritten for the new backend so that
 * `lab status` and `backend get` report it.
 */

export function labBackendName(type: ConfiguredBackend): LabBackendName | undefined {
  return (LAB_BACKEND_MODULES as readonly string[]).includes(type) ? (type as LabBackendName) : undefined
}

/** The lab's plan as it would be with another backend (same nodes, pods, addresses, MACs). */
export function labPlanFor(record: LabRecord, type: ConfiguredBackend): LabPlan {
  const backend = labBackendName(type)
  if (!backend) throw new NetctlError(`the lab has no ${type} backend module`)
  // route reflectors exist only in calico-rr; any other backend runs the full mesh
  return {
    ...record,
    backend,
    nodes: record.nodes.map((n) => ({...n, routeReflector: backend === 'calico-rr' && n.routeReflector})),
  }
}

function labNode(record: LabRecord, name: string): LabNode {
  const node = record.nodes.find((n) => n.name === name)
  if (!node) throw new NetctlError(`lab ${record.name} has no node ${name}`)
  return node
}

/** The lab backend module's node daemon of that name: the lab's registry, never its internals. */
function nodeDaemon(daemon: Daemon): LabNodeDaemon {
  const d = labDaemon(daemon)
  if (!d) throw new NetctlError(`no lab backend runs ${daemon}`)
  return d
}

export function labDaemons(record: LabRecord): DaemonControl {
  return {
    async stop(node, daemon) {
      await nodeDaemon(daemon).stop(labNode(record, node))
    },
    async start(node, daemon, type) {
      await nodeDaemon(daemon).start(labPlanFor(record, type), labNode(record, node))
    },
    async reconfigure(node, daemon, type) {
      // only BIRD takes a new config live; the udp forwarder is restarted by its start/stop steps
      await nodeDaemon(daemon).reconfigure?.(labPlanFor(record, type), labNode(record, node))
    },
  }
}

/** Real pings from pod namespaces: one pod per node to one on every other node, and a same-node pair; a few tries each. */
export function labReachability(record: LabRecord, tries = 5): ReachabilityCheck {
  return {
    async check() {
      const pairs = reachabilityPairs(record)
      const results = await mapLimit(pairs, 8, async ([a, b]) => {
        for (let i = 0; i < tries; i++) {
          const r = await pingPod(a, b, 1)
          if (r.ok) return r
          if (i < tries - 1) await sleep(300)
        }
        return {from: a.name, to: b.name, toIP: b.ip, ok: false}
      })
      const failed = results.filter((r) => !r.ok).map((r) => ({from: r.from, to: r.to, toIP: r.toIP}))
      return {pairs: results.length, ok: results.length - failed.length, failed}
    },
  }
}

/** Rewrite what the lab says about its backend: the record, the inventory, every node's files. Returns the files written. */
export async function recordLabBackend(record: LabRecord, type: ConfiguredBackend): Promise<string[]> {
  const plan = labPlanFor(record, type)
  const backend = labBackend(plan.backend)
  const updated: LabRecord = {
    ...record,
    backend: plan.backend,
    nodes: plan.nodes,
    warnings: backend.warnings?.(plan) ?? [],
  }
  await mapLimit(plan.nodes, 4, (n) => writeNodeFiles(plan, n, backend))
  await writeInventory(plan)
  await saveRecord(updated)
  Object.assign(record, updated)
  return [recordPath(record.stateDir), record.inventory, ...plan.nodes.flatMap((n) => nodeFiles(n, backend))]
}
