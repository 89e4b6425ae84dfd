import type {NsScript} from '../script.js'
import type {LabNode, LabPlan} from '../types.js'
import {comment, RestoreFile} from './restore.js'

/**
 * flanneld's traffic manager: flannel pkg/trafficmngr/iptables/iptables.go
 * (forwardRules, masqRules with --random-fully, as iptables ≥ 1.6.2 supports)
 * or pkg/trafficmngr/nftables/nftables.go (EnableNFTables: table ip flannel-ipv4).
 */
export function flannelIptables(plan: LabPlan, node: LabNode): RestoreFile {
  const f = new RestoreFile()
  const net = plan.clusterCIDR
  const pod = node.podCIDR
  const fwd = comment('flanneld forward')
  const masq = comment('flanneld masq')
  f.chain('filter', 'FLANNEL-FWD')
  f.rule('filter', `-A FORWARD ${fwd} -j FLANNEL-FWD`)
  f.rule('filter', `-A FLANNEL-FWD -s ${net} ${fwd} -j ACCEPT`)
  f.rule('filter', `-A FLANNEL-FWD -d ${net} ${fwd} -j ACCEPT`)
  f.chain('nat', 'FLANNEL-POSTRTG')
  f.rule('nat', `-A POSTROUTING ${masq} -j FLANNEL-POSTRTG`)
  f.rule('nat', `-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 ${masq} -j RETURN`)
  f.rule('nat', `-A FLANNEL-POSTRTG -s ${pod} -d ${net} ${masq} -j RETURN`)
  f.rule('nat', `-A FLANNEL-POSTRTG -s ${net} -d ${pod} ${masq} -j RETURN`)
  f.rule('nat', `-A FLANNEL-POSTRTG ! -s ${net} -d ${pod} ${masq} -j RETURN`)
  f.rule('nat', `-A FLANNEL-POSTRTG -s ${net} ! -d 224.0.0.0/4 ${masq} -j MASQUERADE --random-fully`)
  f.rule('nat', `-A FLANNEL-POSTRTG ! -s ${net} -d ${net} ${masq} -j MASQUERADE --random-fully`)
  return f
}

/** The `nft -f` input for flanneld with EnableNFTables: table ip flannel-ipv4. */
export function flannelNftables(plan: LabPlan, node: LabNode): string {
  const t = 'ip flannel-ipv4'
  const net = plan.clusterCIDR
  const pod = node.podCIDR
  return `${[
    `add table ${t} { comment "rules for flannel-ipv4" ; }`,
    `add chain ${t} forward { type filter hook forward priority filter ; comment "chain to accept flannel traffic" ; }`,
    `flush chain ${t} forward`,
    `add rule ${t} forward ip saddr ${net} accept`,
    `add rule ${t} forward ip daddr ${net} accept`,
    `add chain ${t} postrtg { type nat hook postrouting priority srcnat ; comment "chain to manage traffic masquerading by flannel" ; }`,
    `flush chain ${t} postrtg`,
    `add rule ${t} postrtg meta mark 0x4000 return`,
    `add rule ${t} postrtg ip saddr ${pod} ip daddr ${net} return`,
    `add rule ${t} postrtg ip saddr ${net} ip daddr ${pod} return`,
    `add rule ${t} postrtg ip saddr != ${pod} ip daddr ${net} return`,
    `add rule ${t} postrtg ip saddr ${net} ip daddr != 224.0.0.0/4 masquerade fully-random`,
    `add rule ${t} postrtg ip saddr != ${net} ip daddr ${net} masquerade fully-random`,
  ].join('\n')}\n`
}

/**
 * The bridge CNI plugin with `hairpinMode: true` (the lab's conflist) turns
 * hairpin on for every pod's port on cni0 (containernetworking/plugins
 * plugins/main/bridge/bridge.go: netlink.LinkSetHairpin on the host veth).
 */
export function bridgeHairpin(s: NsScript, plan: LabPlan, node: LabNode): void {
  for (const pod of plan.pods.filter((p) => p.node === node.name))
    s.bridge('link', 'set', 'dev', pod.hostVeth, 'hairpin', 'on')
}
