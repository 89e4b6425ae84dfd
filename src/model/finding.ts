/**
 * A finding: one fault (or risk) that analysis found in a snapshot, with the
 * evidence behind it and the fix. Plain JSON, part of the `--json` contract
 * (schemas/finding.schema.json): extend with new optional fields, never rename.
 */

/** Why `backend plan/set` preflight refuses a switch: netctl's addition to docs/design.md's table. */
export const BACKEND_SWITCH_CODES = [
  'BACKEND_FAMILY_CHANGE',
  'KERNEL_MODULE_MISSING',
  'BACKEND_UNSUPPORTED',
  'DAEMON_UNMANAGED',
  'DAEMON_PROGRAM_MISSING',
] as const

/**
 * Every finding code netctl can report, grouped as docs/design.md's catalogue table,
 * then the backend-switch group.
 * Codes are stable API: `netctl explain CODE` documents each one
 * (src/analyze/catalogue/ holds the text).
 */
export const FINDING_CODES = [
  // overlay
  'FDB_MISSING',
  'FDB_STALE',
  'NEIGH_MISSING',
  'NEIGH_NOT_PERMANENT',
  'VTEP_MAC_MISMATCH',
  'VXLAN_PORT_MISMATCH',
  'VNI_MISMATCH',
  'TUNNEL_DEVICE_MISSING',
  'TUNNEL_DEVICE_DOWN',
  'ENCAP_PORT_BLOCKED',
  'VXLAN_CSUM_OFFLOAD',
  'UDP_DAEMON_DOWN',
  // MTU
  'MTU_MISMATCH',
  'MTU_EXCEEDS_ENCAP',
  // host
  'IP_FORWARD_DISABLED',
  'FORWARD_POLICY_DROP',
  'FIREWALL_DROP',
  'RP_FILTER_ASYMMETRIC',
  'BR_NETFILTER_OFF',
  'IPTABLES_BACKEND_SPLIT',
  'LINK_DOWN',
  // routing
  'ROUTE_MISSING',
  'ROUTE_STALE',
  'ROUTE_WRONG_NEXTHOP',
  'BLACKHOLE_ROUTE',
  'HOSTGW_NOT_L2_ADJACENT',
  'ASYMMETRIC_PATH',
  // BGP
  'BGP_SESSION_DOWN',
  'BGP_AS_MISMATCH',
  'BGP_ROUTE_NOT_INSTALLED',
  'BGP_MESH_TOO_LARGE',
  'RR_CLUSTER_ID_CONFLICT',
  'BGP_PEER_UNKNOWN',
  // addressing
  'PODCIDR_MISSING',
  'PODCIDR_DUPLICATE',
  'PODCIDR_OVERLAP',
  'PODCIDR_OUTSIDE_NETWORK',
  'SUBNET_ENV_MISMATCH',
  'BRIDGE_ADDR_MISMATCH',
  'NODE_IP_MISMATCH',
  // CNI / policy
  'CNI_CONFIG_CONFLICT',
  'CNI_PLUGIN_MISSING',
  'POLICY_DENY',
  'POLICY_UNENFORCED',
  'POLICY_NOT_PROGRAMMED',
  'POLICY_STALE_RULES',
  // Services (kube-proxy, conntrack)
  'SERVICE_NO_ENDPOINTS',
  'SERVICE_RULES_STALE',
  'CONNTRACK_STALE',
  'CONNTRACK_TABLE_FULL',
  'HAIRPIN_OFF',
  'KUBE_PROXY_MISSING',
  // probe (trace --probe)
  'UNDERLAY_DROP',
  'MODEL_DISAGREES',
  // collection
  'NODE_UNREACHABLE',
  'COLLECTION_PARTIAL',
  ...BACKEND_SWITCH_CODES,
] as const

export type FindingCode = (typeof FINDING_CODES)[number]

export const SEVERITIES = ['error', 'warning', 'info'] as const
/** error: traffic is (or will be) lost; warning: a risk or a partial fault; info: worth knowing. */
export type Severity = (typeof SEVERITIES)[number]

export interface Finding {
  code: FindingCode
  severity: Severity
  /** the node the finding is about; absent for cluster-wide findings (e.g. PODCIDR_DUPLICATE across nodes) */
  node?: string
  /** what it is about, in a few words: "flannel.1 → node2 (172.18.0.12)", "10.244.2.0/24", "Mesh_172_18_0_12" */
  subject: string
  /** one line saying what is wrong here, with the concrete values */
  message: string
  /** the state lines that prove it, as the tools print them (`ip route`, `bridge fdb`, `iptables-save`, `birdc` ...) */
  evidence: string[]
  /**
   * How to repair it: shell lines with the node's values filled in; lines that
   * start with `#` are explanations, every other line is a command to run.
   */
  fix: string
}

/** Findings by severity, errors first (a stable order for output and exit codes). */
export function severityRank(s: Severity): number {
  return s === 'error' ? 0 : s === 'warning' ? 1 : 2
}
