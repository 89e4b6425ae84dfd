/**
 * The checks: findings about node state beyond a single packet's path, each
 * one small and named after its finding code. Pure: a snapshot in, findings
 * out, in a stable order (the registry's order, then node order).
 */
import type {Finding, FindingCode} from '../../model/finding.js'
import type {Snapshot} from '../../model/snapshot.js'
import {
  bridgeAddrMismatch,
  nodeIpMismatch,
  podcidrDuplicate,
  podcidrMissing,
  podcidrOutsideNetwork,
  podcidrOverlap,
  subnetEnvMismatch,
} from './addressing.js'
import {
  bgpAsMismatch,
  bgpMeshTooLarge,
  bgpPeerUnknown,
  bgpRouteNotInstalled,
  bgpSessionDown,
  rrClusterIdConflict,
} from './bgp.js'
import {cniConfigConflict, cniPluginMissing} from './cni.js'
import {collectionErrors} from './collection.js'
import {CheckContext} from './context.js'
import {encapPortBlocked, firewallDrop, forwardPolicyDrop, iptablesBackendSplit} from './firewall.js'
import {brNetfilterOff, ipForwardDisabled, linkDownCheck, rpFilterAsymmetric} from './host.js'
import {mtuExceedsEncap, mtuMismatch} from './mtu.js'
import {
  tunnelDeviceDown,
  tunnelDeviceMissing,
  udpDaemonDown,
  vniMismatch,
  vxlanCsumOffload,
  vxlanPortMismatch,
} from './overlay-device.js'
import {fdbMissing, fdbStale, neighMissing, neighNotPermanent, vtepMacMismatch} from './overlay-peers.js'
import {policyIsolated, policyUnenforced} from './policy.js'
import {policyNotProgrammed, policyStaleRules} from './policy-dataplane.js'
import type {Check, Raised} from './raise.js'
import {blackholeRoute, hostgwNotL2Adjacent, routeMissing, routeStale, routeWrongNexthop} from './routing.js'
import {
  conntrackStaleCheck,
  conntrackTableFull,
  hairpinOffCheck,
  kubeProxyMissing,
  serviceNoEndpoints,
  serviceRulesStale,
} from './services.js'

/** Every check, by the code it raises, in docs/design.md's catalogue order. */
export const CHECKS: ReadonlyArray<{code: FindingCode; check: Check}> = [
  {code: 'NODE_UNREACHABLE', check: collectionErrors},
  {code: 'TUNNEL_DEVICE_MISSING', check: tunnelDeviceMissing},
  {code: 'TUNNEL_DEVICE_DOWN', check: tunnelDeviceDown},
  {code: 'UDP_DAEMON_DOWN', check: udpDaemonDown},
  {code: 'FDB_MISSING', check: fdbMissing},
  {code: 'FDB_STALE', check: fdbStale},
  {code: 'NEIGH_MISSING', check: neighMissing},
  {code: 'NEIGH_NOT_PERMANENT', check: neighNotPermanent},
  {code: 'VTEP_MAC_MISMATCH', check: vtepMacMismatch},
  {code: 'VXLAN_PORT_MISMATCH', check: vxlanPortMismatch},
  {code: 'VNI_MISMATCH', check: vniMismatch},
  {code: 'ENCAP_PORT_BLOCKED', check: encapPortBlocked},
  {code: 'VXLAN_CSUM_OFFLOAD', check: vxlanCsumOffload},
  {code: 'MTU_MISMATCH', check: mtuMismatch},
  {code: 'MTU_EXCEEDS_ENCAP', check: mtuExceedsEncap},
  {code: 'IP_FORWARD_DISABLED', check: ipForwardDisabled},
  {code: 'FORWARD_POLICY_DROP', check: forwardPolicyDrop},
  {code: 'FIREWALL_DROP', check: firewallDrop},
  {code: 'RP_FILTER_ASYMMETRIC', check: rpFilterAsymmetric},
  {code: 'BR_NETFILTER_OFF', check: brNetfilterOff},
  {code: 'IPTABLES_BACKEND_SPLIT', check: iptablesBackendSplit},
  {code: 'LINK_DOWN', check: linkDownCheck},
  {code: 'ROUTE_MISSING', check: routeMissing},
  {code: 'ROUTE_STALE', check: routeStale},
  {code: 'ROUTE_WRONG_NEXTHOP', check: routeWrongNexthop},
  {code: 'BLACKHOLE_ROUTE', check: blackholeRoute},
  {code: 'HOSTGW_NOT_L2_ADJACENT', check: hostgwNotL2Adjacent},
  {code: 'BGP_SESSION_DOWN', check: bgpSessionDown},
  {code: 'BGP_AS_MISMATCH', check: bgpAsMismatch},
  {code: 'BGP_ROUTE_NOT_INSTALLED', check: bgpRouteNotInstalled},
  {code: 'BGP_MESH_TOO_LARGE', check: bgpMeshTooLarge},
  {code: 'RR_CLUSTER_ID_CONFLICT', check: rrClusterIdConflict},
  {code: 'BGP_PEER_UNKNOWN', check: bgpPeerUnknown},
  {code: 'PODCIDR_MISSING', check: podcidrMissing},
  {code: 'PODCIDR_DUPLICATE', check: podcidrDuplicate},
  {code: 'PODCIDR_OVERLAP', check: podcidrOverlap},
  {code: 'PODCIDR_OUTSIDE_NETWORK', check: podcidrOutsideNetwork},
  {code: 'SUBNET_ENV_MISMATCH', check: subnetEnvMismatch},
  {code: 'BRIDGE_ADDR_MISMATCH', check: bridgeAddrMismatch},
  {code: 'NODE_IP_MISMATCH', check: nodeIpMismatch},
  {code: 'CNI_CONFIG_CONFLICT', check: cniConfigConflict},
  {code: 'CNI_PLUGIN_MISSING', check: cniPluginMissing},
  {code: 'POLICY_DENY', check: policyIsolated},
  {code: 'POLICY_UNENFORCED', check: policyUnenforced},
  {code: 'POLICY_NOT_PROGRAMMED', check: policyNotProgrammed},
  {code: 'POLICY_STALE_RULES', check: policyStaleRules},
  {code: 'SERVICE_NO_ENDPOINTS', check: serviceNoEndpoints},
  {code: 'SERVICE_RULES_STALE', check: serviceRulesStale},
  {code: 'CONNTRACK_STALE', check: conntrackStaleCheck},
  {code: 'CONNTRACK_TABLE_FULL', check: conntrackTableFull},
  {code: 'HAIRPIN_OFF', check: hairpinOffCheck},
  {code: 'KUBE_PROXY_MISSING', check: kubeProxyMissing},
]

export interface CheckOptions {
  /**
   * Keep only findings about these nodes: a finding on one of them, or a
   * cluster-wide finding that names one of them (trace reports the checks
   * that touch the nodes on its path).
   */
  nodes?: readonly string[]
  /** with `nodes`: also keep the findings about no node whose subject is one of these (a traced Service: `Service ns/name`) */
  subjects?: readonly string[]
}

/** Every check, with the nodes each finding is about. */
export function runChecksRaised(snapshot: Snapshot, opts: CheckOptions = {}): Raised[] {
  if (!opts.nodes) {
    const ctx = new CheckContext(snapshot)
    return CHECKS.flatMap(({check}) => check(ctx))
  }
  const wanted = new Set(opts.nodes)
  // the per-node checks look only at the wanted nodes; the filter below still drops what concerns none of them
  const ctx = new CheckContext(snapshot, wanted)
  const all = CHECKS.flatMap(({check}) => check(ctx))
  const subjects = new Set(opts.subjects ?? [])
  return all.filter((r) =>
    r.finding.node !== undefined
      ? wanted.has(r.finding.node)
      : r.about.some((n) => wanted.has(n)) || (r.about.length === 0 && subjects.has(r.finding.subject)),
  )
}

export function runChecks(snapshot: Snapshot, opts: CheckOptions = {}): Finding[] {
  return runChecksRaised(snapshot, opts).map((r) => r.finding)
}
