/**
 * The CNI's node agents, for the API-server emulator over a lab: what
 * flanneld does when its DaemonSet restarts, and what Felix and BIRD do when
 * an IPPool changes. Each reads its configuration from the emulator's
 * objects, as the real agent reads it from the API, and programs the lab
 * nodes with the lab's own backend modules — the way the real agents do it:
 * the new backend's state is added (a route to the same block replaced in
 * place), the old backend's devices are left where they are (flanneld never
 * deletes flannel.1), and the node's annotations say what the agent runs.
 */
import {applyAll} from '../../src/backend/act/apply.js'
import {labDaemons, recordLabBackend} from '../../src/backend/act/lab.js'
import type {BackendType} from '../../src/backend/plan/types.js'
import {planBackend} from '../../src/backend/service.js'
import {resolveTarget} from '../../src/backend/target.js'
import type {KubeApiServer} from './kube-apiserver.js'

export interface StandinControl {
  /** nodes whose agent fails on the next rollout (a crash loop): the others are programmed, the rollout never completes */
  failNext: Set<string>
  /** backends the agent was started with, in order */
  runs: string[]
}

/** Program every lab node for `type` as the agent would (adds and daemons, no removals); throws for the nodes told to fail. */
async function program(lab: string, type: BackendType, fail: Set<string>): Promise<void> {
  const target = await resolveTarget({lab})
  try {
    const {plan} = await planBackend(target, type, {version: 'standin'})
    if (plan.noop) return
    const ops = plan.nodes
      .filter((n) => n.ops && !fail.has(n.node))
      .map((n) => ({...n.ops!, removeIp: [], removeBridge: []}))
    const results = await applyAll(ops, {
      nodes: target.inventory.nodes,
      daemons: labDaemons(target.record!),
      type,
      abort: {aborted: false},
    })
    const failed = results.find((r) => !r.ok)
    if (failed) throw new Error(`${failed.node}: ${failed.error}`)
    if (fail.size > 0) throw new Error(`agent crash-looping on ${[...fail].join(', ')}`)
    await recordLabBackend(target.record!, type)
  } finally {
    await target.close()
  }
}

/** flanneld: on each rollout of the flannel DaemonSet, the backend of net-conf.json; the node annotations as flanneld writes them. */
export function flanneldStandin(server: KubeApiServer, lab: string, vtepMACs: Record<string, string>): StandinControl {
  const control: StandinControl = {failNext: new Set(), runs: []}
  server.onRollout(async (ds) => {
    if (!/flannel|canal/.test(ds.metadata.name)) return
    const cm = server.list('configmaps').find((c) => c.data?.['net-conf.json'])!
    const kind = String(JSON.parse(cm.data['net-conf.json']).Backend?.Type ?? 'udp')
    const fail = new Set(control.failNext)
    control.failNext.clear()
    control.runs.push(`flannel-${kind}`)
    await program(lab, `flannel-${kind}` as BackendType, fail)
    for (const node of server.list('nodes')) {
      const name = node.metadata.name as string
      server.update('nodes', '', name, (n) => {
        n.metadata.annotations = {
          ...n.metadata.annotations,
          'flannel.alpha.coreos.com/backend-type': kind,
          'flannel.alpha.coreos.com/backend-data':
            kind === 'vxlan' ? JSON.stringify({VNI: 1, VtepMAC: vtepMACs[name]}) : 'null',
        }
      })
    }
  })
  return control
}

/** Felix and BIRD: on each change of an IPPool's encapsulation, the backend its modes say. */
export function felixStandin(server: KubeApiServer, lab: string): StandinControl {
  const control: StandinControl = {failNext: new Set(), runs: []}
  server.onChange('ippools', async (pool, before) => {
    const {ipipMode, vxlanMode} = pool.spec
    if (ipipMode === before.spec.ipipMode && vxlanMode === before.spec.vxlanMode) return
    const type =
      vxlanMode === 'CrossSubnet'
        ? 'calico-vxlan-crosssubnet'
        : vxlanMode === 'Always'
          ? 'calico-vxlan'
          : ipipMode !== 'Never'
            ? 'calico-ipip'
            : 'calico-bgp'
    const fail = new Set(control.failNext)
    control.failNext.clear()
    control.runs.push(type)
    await program(lab, type as BackendType, fail)
  })
  return control
}
