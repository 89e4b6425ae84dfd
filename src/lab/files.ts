import {chmod, mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {addToIPv4, prefixLength} from '../analyze/ip.js'
import {cniRunsFlanneld} from '../model/backends.js'
import {ZONE_LABEL} from '../model/inventory.js'
import type {LabBackend} from './backends/index.js'
import type {LabNode, LabPlan} from './types.js'

/**
 * Paths of the files a real node keeps in well-known places; a lab node keeps
 * them under its own directory (mount namespaces are shared between labs).
 */
export function nodePaths(node: LabNode): {
  flannelSubnetEnv: string
  cniConfDir: string
  cniBinDir: string
  birdSocket: string
  facts: string
} {
  return {
    flannelSubnetEnv: path.join(node.dir, 'run/flannel/subnet.env'),
    cniConfDir: path.join(node.dir, 'etc/cni/net.d'),
    cniBinDir: path.join(node.dir, 'opt/cni/bin'),
    birdSocket: path.join(node.dir, 'run/calico/bird.ctl'),
    facts: path.join(node.dir, 'node.json'),
  }
}

function flannelConflist(): object {
  return {
    name: 'cbr0',
    cniVersion: '0.3.1',
    plugins: [
      {type: 'flannel', delegate: {hairpinMode: true, isDefaultGateway: true}},
      {type: 'portmap', capabilities: {portMappings: true}},
    ],
  }
}

/** Calico's conflist; Canal's (canal-config's cni_network_config) differs in its IPAM: host-local on the node's podCIDR. */
function calicoConflist(node: LabNode, mtu: number, ipam: object): object {
  return {
    name: 'k8s-pod-network',
    cniVersion: '0.3.1',
    plugins: [
      {
        type: 'calico',
        log_level: 'info',
        datastore_type: 'kubernetes',
        nodename: node.name,
        mtu,
        ipam,
        policy: {type: 'k8s'},
      },
      {type: 'portmap', snat: true, capabilities: {portMappings: true}},
    ],
  }
}

/** Plugin names each family's conflist calls, plus what it delegates to. */
const CNI_PLUGINS = {
  flannel: ['flannel', 'bridge', 'host-local', 'portmap', 'loopback'],
  calico: ['calico', 'calico-ipam', 'portmap', 'loopback'],
  canal: ['calico', 'host-local', 'portmap', 'loopback'],
}

/** The CNI config file of each family, by the name its installer gives it. */
const CONFLIST = {flannel: '10-flannel.conflist', calico: '10-calico.conflist', canal: '10-canal.conflist'}

/** The files writeNodeFiles writes for a backend (subnet.env where flanneld runs). */
export function nodeFiles(node: LabNode, backend: LabBackend): string[] {
  const p = nodePaths(node)
  return [
    p.facts,
    ...(cniRunsFlanneld(backend.family) ? [p.flannelSubnetEnv] : []),
    path.join(p.cniConfDir, CONFLIST[backend.family]),
  ]
}

export interface NodeFacts {
  name: string
  internalIP: string
  podCIDR: string
  annotations: Record<string, string>
  labels: Record<string, string>
}

export function nodeFacts(plan: LabPlan, node: LabNode, backend: LabBackend): NodeFacts {
  const labels: Record<string, string> = {'kubernetes.io/hostname': node.name, 'kubernetes.io/os': 'linux'}
  if (node.routeReflector) labels['route-reflector'] = 'true'
  if (node.zone) labels[ZONE_LABEL] = node.zone
  return {
    name: node.name,
    internalIP: node.ip,
    podCIDR: node.podCIDR,
    annotations: backend.annotations(plan, node),
    labels,
  }
}

/** Write subnet.env, the CNI conflist and plugin stand-ins, and the node's facts. */
export async function writeNodeFiles(plan: LabPlan, node: LabNode, backend: LabBackend): Promise<void> {
  const p = nodePaths(node)
  const mtu = backend.podMTU(plan.underlayMTU)
  await mkdir(path.dirname(p.flannelSubnetEnv), {recursive: true})
  await mkdir(path.dirname(p.birdSocket), {recursive: true})
  await mkdir(p.cniConfDir, {recursive: true})
  await mkdir(p.cniBinDir, {recursive: true})
  if (cniRunsFlanneld(backend.family)) {
    await writeFile(
      p.flannelSubnetEnv,
      [
        `FLANNEL_NETWORK=${plan.clusterCIDR}`,
        `FLANNEL_SUBNET=${addToIPv4(node.podCIDR, 1)}/${prefixLength(node.podCIDR)}`,
        `FLANNEL_MTU=${mtu}`,
        'FLANNEL_IPMASQ=true',
        '',
      ].join('\n'),
    )
  }
  const conflist =
    backend.family === 'flannel'
      ? flannelConflist()
      : calicoConflist(
          node,
          mtu,
          backend.family === 'canal' ? {type: 'host-local', subnet: 'usePodCidr'} : {type: 'calico-ipam'},
        )
  await writeFile(path.join(p.cniConfDir, CONFLIST[backend.family]), `${JSON.stringify(conflist, null, 2)}\n`)
  // Stand-ins for the plugin binaries, so "is the plugin installed" has a real answer.
  for (const plugin of CNI_PLUGINS[backend.family]) {
    const f = path.join(p.cniBinDir, plugin)
    await writeFile(f, `#!/bin/sh\necho "netctl lab: stand-in for the ${plugin} CNI plugin" >&2\nexit 1\n`)
    await chmod(f, 0o755)
  }
  await writeFile(p.facts, `${JSON.stringify(nodeFacts(plan, node, backend), null, 2)}\n`)
}
