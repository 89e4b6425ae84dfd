import type {NsScript} from '../script.js'
import type {LabNode, LabPlan} from '../types.js'
import type {HostProfile} from './defaults.js'
import {RestoreFile} from './restore.js'

/**
 * What the node's distribution and its other software add:
 * - plain: nothing (the kernel's defaults: rp_filter 0, empty firewall);
 * - docker: an Ubuntu/Debian node running Docker: systemd's 50-default.conf
 *   rp_filter 2 (loose), and moby's iptables (libnetwork/iptables,
 *   drivers/bridge: DOCKER-USER, DOCKER-FORWARD and friends, FORWARD policy
 *   DROP once Docker enables ip_forward), with its docker0 bridge (down, no containers);
 * - firewalld: a RHEL/Fedora node: rp_filter 1 (strict) and firewalld's native
 *   nftables table `inet firewalld` (src/firewall/core/nftables.py: base chains
 *   filter_* at priority filter + 10, zones dispatched by interface), the pod
 *   and tunnel interfaces in the `trusted` zone and the CNI's ports opened in
 *   `public`, as the CNIs' install guides tell firewalld users to do.
 */
export const DOCKER_BRIDGE = {device: 'docker0', cidr: '172.17.0.0/16', address: '172.17.0.1/16'} as const

export function hostSysctls(s: NsScript, profile: HostProfile): void {
  const rp = profile === 'docker' ? 2 : profile === 'firewalld' ? 1 : undefined
  if (rp === undefined) return
  s.sysctl('net.ipv4.conf.all.rp_filter', rp)
  s.sysctl('net.ipv4.conf.default.rp_filter', rp)
}

export function dockerLink(s: NsScript): void {
  s.ip('link', 'add', DOCKER_BRIDGE.device, 'type', 'bridge')
  s.ip('addr', 'add', DOCKER_BRIDGE.address, 'dev', DOCKER_BRIDGE.device)
}

/** moby ≥ 28.2's rules for the default bridge (DOCKER-INTERNAL replaced the isolation chains), and FORWARD policy DROP. */
export function dockerIptables(): {restore: RestoreFile; forwardPolicy: 'DROP'} {
  const f = new RestoreFile()
  const br = DOCKER_BRIDGE.device
  for (const c of ['DOCKER', 'DOCKER-BRIDGE', 'DOCKER-CT', 'DOCKER-FORWARD', 'DOCKER-INTERNAL', 'DOCKER-USER'])
    f.chain('filter', c)
  f.rule('filter', '-A FORWARD -j DOCKER-USER')
  f.rule('filter', '-A FORWARD -j DOCKER-FORWARD')
  f.rule('filter', `-A DOCKER ! -i ${br} -o ${br} -j DROP`)
  f.rule('filter', `-A DOCKER-BRIDGE -o ${br} -j DOCKER`)
  f.rule('filter', `-A DOCKER-CT -o ${br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`)
  f.rule('filter', '-A DOCKER-FORWARD -j DOCKER-CT')
  f.rule('filter', '-A DOCKER-FORWARD -j DOCKER-INTERNAL')
  f.rule('filter', '-A DOCKER-FORWARD -j DOCKER-BRIDGE')
  f.rule('filter', `-A DOCKER-FORWARD -i ${br} -j ACCEPT`)
  f.chain('nat', 'DOCKER')
  f.rule('nat', '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER')
  f.rule('nat', '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER')
  f.rule('nat', `-A POSTROUTING -s ${DOCKER_BRIDGE.cidr} ! -o ${br} -j MASQUERADE`)
  return {restore: f, forwardPolicy: 'DROP'}
}

/** The interfaces a CNI's firewalld guide puts in the trusted zone, and the ports it opens. */
function cniFirewall(plan: LabPlan): {trusted: string[]; udp: number[]; tcp: number[]} {
  if (plan.backend.startsWith('calico')) return {trusted: ['cali*', 'vxlan.calico'], udp: [4789], tcp: [179]}
  if (plan.backend === 'canal') return {trusted: ['cali*', 'flannel.1'], udp: [8472], tcp: []}
  if (plan.backend === 'flannel-udp') return {trusted: ['cni0', 'flannel0'], udp: [8285], tcp: []}
  return {trusted: ['cni0', 'flannel.1'], udp: [8472], tcp: []}
}

/** firewalld's table as `nft -f` input, for one node. */
export function firewalldNftables(plan: LabPlan, _node: LabNode): string {
  const t = 'inet firewalld'
  const cni = cniFirewall(plan)
  const ifaces = `{ ${cni.trusted.map((i) => `"${i}"`).join(', ')} }`
  const L = [
    `add table ${t}`,
    `add chain ${t} filter_INPUT { type filter hook input priority filter + 10 ; policy accept ; }`,
    `add chain ${t} filter_FORWARD { type filter hook forward priority filter + 10 ; policy accept ; }`,
    `add chain ${t} filter_OUTPUT { type filter hook output priority filter + 10 ; policy accept ; }`,
    `add chain ${t} filter_INPUT_ZONES`,
    `add chain ${t} filter_FORWARD_ZONES`,
    `add chain ${t} filter_IN_public`,
    `add chain ${t} filter_IN_public_allow`,
    `add chain ${t} filter_IN_trusted`,
    `add chain ${t} filter_FWD_public`,
    `add chain ${t} filter_FWD_trusted`,
    `add rule ${t} filter_INPUT ct state { established, related } accept`,
    `add rule ${t} filter_INPUT ct status dnat accept`,
    `add rule ${t} filter_INPUT iifname "lo" accept`,
    `add rule ${t} filter_INPUT ct state { invalid } drop`,
    `add rule ${t} filter_INPUT jump filter_INPUT_ZONES`,
    `add rule ${t} filter_INPUT reject with icmpx admin-prohibited`,
    `add rule ${t} filter_FORWARD ct state { established, related } accept`,
    `add rule ${t} filter_FORWARD ct status dnat accept`,
    `add rule ${t} filter_FORWARD iifname "lo" accept`,
    `add rule ${t} filter_FORWARD ct state { invalid } drop`,
    `add rule ${t} filter_FORWARD jump filter_FORWARD_ZONES`,
    `add rule ${t} filter_FORWARD reject with icmpx admin-prohibited`,
    `add rule ${t} filter_OUTPUT ct state { established, related } accept`,
    `add rule ${t} filter_OUTPUT oifname "lo" accept`,
    `add rule ${t} filter_INPUT_ZONES iifname ${ifaces} goto filter_IN_trusted`,
    `add rule ${t} filter_INPUT_ZONES goto filter_IN_public`,
    `add rule ${t} filter_IN_trusted accept`,
    `add rule ${t} filter_IN_public meta l4proto { icmp, ipv6-icmp } accept`,
    `add rule ${t} filter_IN_public jump filter_IN_public_allow`,
    `add rule ${t} filter_IN_public_allow tcp dport 22 accept`,
    ...cni.udp.map((p) => `add rule ${t} filter_IN_public_allow udp dport ${p} accept`),
    ...cni.tcp.map((p) => `add rule ${t} filter_IN_public_allow tcp dport ${p} accept`),
    `add rule ${t} filter_IN_public_allow tcp dport 30000-32767 accept`,
    `add rule ${t} filter_IN_public_allow udp dport 30000-32767 accept`,
    `add rule ${t} filter_FORWARD_ZONES iifname ${ifaces} goto filter_FWD_trusted`,
    `add rule ${t} filter_FORWARD_ZONES oifname ${ifaces} goto filter_FWD_trusted`,
    `add rule ${t} filter_FORWARD_ZONES goto filter_FWD_public`,
    `add rule ${t} filter_FWD_trusted accept`,
  ]
  return `${L.join('\n')}\n`
}
