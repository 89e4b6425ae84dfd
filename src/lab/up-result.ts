import {type LabAgentsView, labAgentsView} from './agents/index.js'
import {labSshPaths} from './sshd.js'
import type {LabNode, LabPod, LabRecord} from './types.js'

/** What `lab up` made, as `lab up --json` gives it. */
export interface LabUpResult {
  name: string
  backend: LabRecord['backend']
  topology: LabRecord['topology']
  inventory: string
  stateDir: string
  nodes: Array<Pick<LabNode, 'name' | 'netns' | 'ip' | 'podCIDR' | 'vtepMAC' | 'subnet'> & {routeReflector?: true}>
  pods: Array<Pick<LabPod, 'name' | 'namespace' | 'node' | 'netns' | 'ip'>>
  /** with --ssh: the files that reach the nodes */
  ssh?: {config: string; knownHosts: string; identity: string}
  agents: LabAgentsView
  serviceCIDR?: string
  services?: LabRecord['services']
  warnings: string[]
  notes: string[]
}

/** `lab up --json`: the contract in docs/design.md, plus warnings and where the lab's files are. */
export function labUpResult(r: LabRecord): LabUpResult {
  return {
    name: r.name,
    backend: r.backend,
    topology: r.topology,
    inventory: r.inventory,
    stateDir: r.stateDir,
    nodes: r.nodes.map((n) => ({
      name: n.name,
      netns: n.netns,
      ip: n.ip,
      podCIDR: n.podCIDR,
      vtepMAC: n.vtepMAC,
      subnet: n.subnet,
      ...(n.routeReflector ? {routeReflector: true} : {}),
    })),
    pods: r.pods.map((p) => ({name: p.name, namespace: p.namespace, node: p.node, netns: p.netns, ip: p.ip})),
    ...(r.ssh ? {ssh: labSshJson(r)} : {}),
    agents: labAgentsView(r),
    ...(r.services ? {serviceCIDR: r.serviceCIDR, services: r.services} : {}),
    warnings: r.warnings,
    notes: r.notes ?? [],
  }
}

/** With --ssh: the files that reach the nodes (`ssh -F config node1`). */
function labSshJson(r: LabRecord): {config: string; knownHosts: string; identity: string} {
  const {config, knownHosts, identity} = labSshPaths(r.stateDir)
  return {config, knownHosts, identity}
}
