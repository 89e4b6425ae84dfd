import type {ClusterFacts} from '../../src/backend/plan/types.js'
import {assembleNodeState, type ProbedPod} from '../../src/collect/node.js'
import {buildProbe} from '../../src/collect/probe.js'
import {planLab} from '../../src/lab/topology.js'
import type {LabBackendName, LabPlan, LabTopology} from '../../src/lab/types.js'
import type {NodeState} from '../../src/model/node-state.js'
import {probeFixture} from '../helpers/fixtures.js'

// one loader of recorded snapshots for every test
export {snapshotFixture} from '../helpers/fixtures.js'

/** The plan of the lab a fixture was captured from: same name, same addresses and MACs (fixtures/README.md). */
export function fixtureLab(name: string, backend: LabBackendName, topology: LabTopology = 'flat', nodes = 3): LabPlan {
  return planLab({name, nodes, podsPerNode: 2, backend, topology, routeReflectors: 1, ssh: false}, '/nonexistent')
}

/** Facts as `backend` derives them for a lab plan (uplink eth0). */
export function labFacts(plan: LabPlan): ClusterFacts {
  return {
    name: plan.name,
    clusterCIDR: plan.clusterCIDR,
    underlayMTU: plan.underlayMTU,
    nodes: plan.nodes.map((n) => ({
      name: n.name,
      ip: n.ip,
      podCIDR: n.podCIDR,
      uplink: 'eth0',
      subnet: n.subnet,
      vtepMAC: n.vtepMAC,
      tunnelIP: n.tunnelIP,
    })),
  }
}

/** A captured probe output assembled into a node's state, the way the collector does it. */
export function probeState(file: string, node: string, plan?: LabPlan): NodeState {
  const pods: ProbedPod[] = plan
    ? plan.pods.filter((p) => p.node === node).map((p) => ({name: p.name, namespace: p.namespace, netns: p.netns}))
    : []
  const {split} = probeFixture(file)
  return assembleNodeState(node, buildProbe({pods, nonce: 'fixture'}), split, pods, '2024-05-02T10:00:00.000Z').state
}
