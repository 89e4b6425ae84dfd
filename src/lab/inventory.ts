import {writeFile} from 'node:fs/promises'

import {NetctlError, UsageError} from '../errors.js'
import {backendCni} from '../model/backends.js'
import {type Inventory, INVENTORY_API_VERSION, type InventoryNodeAccess} from '../model/inventory.js'
import {labBackend} from './backends/index.js'
import {nodeFacts, nodePaths} from './files.js'
import {LAB_SSH_PORT, LAB_SSH_USER, labProxyCommand, labSshPaths} from './sshd.js'
import {labHealth, loadRecord, presentNetns} from './state.js'
import type {LabNode, LabPlan, LabRecord} from './types.js'

/** How a --ssh lab node is reached over SSH without any config file: the fields of its ssh_config block. */
function labNodeSsh(plan: LabPlan, node: LabNode): NonNullable<InventoryNodeAccess['ssh']> {
  const ssh = labSshPaths(plan.stateDir)
  return {
    host: node.ip,
    user: LAB_SSH_USER,
    port: LAB_SSH_PORT,
    identityFile: ssh.identity,
    proxyCommand: labProxyCommand(node),
    knownHostsFile: ssh.knownHosts,
  }
}

/** The lab's namespaces (its pods' and those --namespace-labels names) with their labels. */
export function labNamespaces(
  plan: Pick<LabPlan, 'pods' | 'namespaceLabels'>,
): Array<{name: string; labels?: Record<string, string>}> {
  const names = [...new Set([...plan.pods.map((p) => p.namespace), ...Object.keys(plan.namespaceLabels ?? {})])].sort()
  return names.map((name) => ({name, ...(plan.namespaceLabels?.[name] ? {labels: plan.namespaceLabels[name]} : {})}))
}

/** The inventory of a lab: the same format a user writes by hand for real nodes. */
export function labInventory(plan: LabPlan): Inventory {
  const backend = labBackend(plan.backend)
  return {
    apiVersion: INVENTORY_API_VERSION,
    kind: 'Inventory',
    // the CNI whose dataplane the lab builds, by its backend
    cluster: {
      name: plan.name,
      backend: plan.backend,
      clusterCIDR: plan.clusterCIDR,
      cni: backendCni(plan.backend),
      source: 'lab',
      ...(plan.serviceCIDR ? {serviceCIDR: plan.serviceCIDR} : {}),
    },
    nodes: plan.nodes.map((node) => {
      const facts = nodeFacts(plan, node, backend)
      const {flannelSubnetEnv, cniConfDir, cniBinDir, birdSocket} = nodePaths(node)
      return {
        name: node.name,
        internalIP: node.ip,
        podCIDR: node.podCIDR,
        access: {netns: node.netns, ...(plan.ssh ? {ssh: labNodeSsh(plan, node)} : {})},
        annotations: facts.annotations,
        labels: facts.labels,
        paths: {flannelSubnetEnv, cniConfDir, cniBinDir, birdSocket},
      }
    }),
    pods: plan.pods.map((p) => ({
      name: p.name,
      namespace: p.namespace,
      node: p.node,
      ip: p.ip,
      netns: p.netns,
      ...(p.labels ? {labels: p.labels} : {}),
      ...(p.ports ? {ports: p.ports} : {}),
    })),
    ...(plan.namespaceLabels ? {namespaces: labNamespaces(plan)} : {}),
    ...(plan.services ? {services: plan.services} : {}),
    ...(plan.networkPolicies?.length ? {networkPolicies: plan.networkPolicies} : {}),
  }
}

export async function writeInventory(plan: LabPlan): Promise<void> {
  // only lab up and the commands that change a lab write it: the YAML library is no part of reading a lab
  const {yamlText} = await import('../util/yaml.js')
  const header = `# netctl inventory of lab '${plan.name}' (written by netctl lab up; the same format describes real nodes)\n`
  await writeFile(plan.inventory, header + yamlText(labInventory(plan)))
}

/**
 * `--lab NAME`: the record of a lab in the state `lab status` finds it in: up,
 * or degraded by a missing namespace (its node is then unreachable), never one
 * whose names point at a namespace it did not make (entering that would read,
 * or change, another namespace).
 */
async function usableRecord(name: string): Promise<LabRecord> {
  const record = await loadRecord(name)
  const health = labHealth(record, await presentNetns())
  if (health.state !== 'up' && health.state !== 'degraded') {
    throw new UsageError(
      `lab '${name}' is ${health.state}${health.reason ? ` (${health.reason})` : ''}, not up (see netctl lab status --name ${name})`,
    )
  }
  if (health.foreign.length > 0) {
    throw new NetctlError(
      `lab '${name}': ${health.foreign.join(', ')} ${health.foreign.length === 1 ? 'is' : 'are'} not the namespace the lab made; refusing to enter it (see netctl lab status --name ${name})`,
      'refused',
      'REFUSED',
    )
  }
  return record
}

/** `--lab NAME`: the inventory file the lab wrote when it came up (for tools that read the file). */
export async function labInventoryFile(name: string): Promise<string> {
  return (await usableRecord(name)).inventory
}

/**
 * `--lab NAME`: the lab's inventory, made from its record as lab up wrote the file from it (every
 * writer of the file saves the record too): a JSON read instead of parsing and validating YAML on
 * every command's start.
 */
export async function labInventoryOf(name: string): Promise<Inventory> {
  return labInventory(await usableRecord(name))
}
