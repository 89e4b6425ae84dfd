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
 *   `public`, as the CNIs' install guides tell firewalld users to do;
 * - ufw: an Ubuntu node with ufw enabled: its sysctl.conf (rp_filter 1), and its
 *   iptables chains as `ufw enable` leaves them with the defaults (INPUT and FORWARD
 *   policy DROP, logging low) and the rules a node admin adds (ssh, the CNI's ports,
 *   kubelet, kube-proxy's health port, the NodePort range).
 */
export const DOCKER_BRIDGE = {device: 'docker0', cidr: '172.17.0.0/16', address: '172.17.0.1/16'} as const

export function hostSysctls(s: NsScript, profile: HostProfile): void {
  const rp = profile === 'docker' ? 2 : profile === 'firewalld' || profile === 'ufw' ? 1 : undefined
  if (rp === undefined) return
  s.sysctl('net.ipv4.conf.all.rp_filter', rp)
  s.sysctl('net.ipv4.conf.default.rp_filter', rp)
  if (profile !== 'ufw') return
  // the rest of ufw's conf/sysctl.conf that applies to IPv4
  for (const key of ['accept_source_route', 'accept_redirects', 'log_martians']) {
    s.sysctl(`net.ipv4.conf.default.${key}`, 0)
    s.sysctl(`net.ipv4.conf.all.${key}`, 0)
  }
  s.sysctl('net.ipv4.icmp_echo_ignore_broadcasts', 1)
  s.sysctl('net.ipv4.icmp_ignore_bogus_error_responses', 1)
  s.sysctl('net.ipv4.icmp_echo_ignore_all', 0)
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

const UFW_HOOKS = ['input', 'output', 'forward'] as const
const UFW_LOG_LIMIT = '-m limit --limit 3/min --limit-burst 10'

/**
 * ufw's IPv4 rules as `ufw enable` leaves them, in the order they reach the kernel (ufw's
 * src/ufw-init-functions `ufw_start`): the primary chains hooked into INPUT, OUTPUT and FORWARD;
 * the track and skip-to-policy chains of conf/ufw.defaults' policies (INPUT DROP, OUTPUT ACCEPT,
 * FORWARD DROP); conf/before.rules and conf/after.rules; user.rules as src/backend_iptables.py
 * writes it (the admin's rules, the LOGGING section of loglevel low, the rate-limit chains), hooked
 * at the end of the before chains; the built-in chains' policies last.
 */
export function ufwIptables(plan: LabPlan): {restore: RestoreFile; policies: Array<['INPUT' | 'FORWARD', 'DROP']>} {
  const f = new RestoreFile()
  const chains = [
    ...['before-logging', 'before', 'after', 'after-logging', 'reject', 'track'].flatMap((c) =>
      UFW_HOOKS.map((h) => `ufw-${c}-${h}`),
    ),
    'ufw-logging-deny',
    'ufw-logging-allow',
    ...UFW_HOOKS.map((h) => `ufw-skip-to-policy-${h}`),
    'ufw-not-local',
    ...UFW_HOOKS.flatMap((h) => [`ufw-user-${h}`, `ufw-user-logging-${h}`]),
    'ufw-user-limit',
    'ufw-user-limit-accept',
  ]
  for (const c of chains) f.chain('filter', c)
  const rule = (line: string): void => void f.rule('filter', line)
  for (const h of UFW_HOOKS)
    for (const c of ['before-logging', 'before', 'after', 'after-logging', 'reject', 'track'])
      rule(`-A ${h.toUpperCase()} -j ufw-${c}-${h}`)
  // the default policies: OUTPUT ACCEPT tracks new connections; skip-to-policy jumps to each policy
  rule('-A ufw-track-output -p tcp -m conntrack --ctstate NEW -j ACCEPT')
  rule('-A ufw-track-output -p udp -m conntrack --ctstate NEW -j ACCEPT')
  rule('-A ufw-skip-to-policy-input -j DROP')
  rule('-A ufw-skip-to-policy-output -j ACCEPT')
  rule('-A ufw-skip-to-policy-forward -j DROP')
  // conf/before.rules
  rule('-A ufw-before-input -i lo -j ACCEPT')
  rule('-A ufw-before-output -o lo -j ACCEPT')
  for (const h of UFW_HOOKS) rule(`-A ufw-before-${h} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`)
  rule('-A ufw-before-input -m conntrack --ctstate INVALID -j ufw-logging-deny')
  rule('-A ufw-before-input -m conntrack --ctstate INVALID -j DROP')
  for (const h of ['input', 'forward'])
    for (const t of ['destination-unreachable', 'time-exceeded', 'parameter-problem', 'echo-request'])
      rule(`-A ufw-before-${h} -p icmp --icmp-type ${t} -j ACCEPT`)
  rule('-A ufw-before-input -p udp --sport 67 --dport 68 -j ACCEPT')
  rule('-A ufw-before-input -j ufw-not-local')
  for (const t of ['LOCAL', 'MULTICAST', 'BROADCAST']) rule(`-A ufw-not-local -m addrtype --dst-type ${t} -j RETURN`)
  rule(`-A ufw-not-local ${UFW_LOG_LIMIT} -j ufw-logging-deny`)
  rule('-A ufw-not-local -j DROP')
  rule('-A ufw-before-input -p udp -d 224.0.0.251 --dport 5353 -j ACCEPT')
  rule('-A ufw-before-input -p udp -d 239.255.255.250 --dport 1900 -j ACCEPT')
  // conf/after.rules
  for (const [proto, port] of [
    ['udp', 137],
    ['udp', 138],
    ['tcp', 139],
    ['tcp', 445],
    ['udp', 67],
    ['udp', 68],
  ] as const)
    rule(`-A ufw-after-input -p ${proto} --dport ${port} -j ufw-skip-to-policy-input`)
  rule('-A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input')
  // user.rules: `ufw allow` of what a node needs open, as ufw writes each (a range through multiport)
  const cni = cniFirewall(plan)
  const allow: Array<[string, string]> = [
    ['tcp', '22'],
    ...cni.udp.map((p): [string, string] => ['udp', String(p)]),
    ...cni.tcp.map((p): [string, string] => ['tcp', String(p)]),
    ['tcp', '10250'],
    ['tcp', '10256'],
    ['tcp', '30000:32767'],
    ['udp', '30000:32767'],
  ]
  for (const [proto, port] of allow)
    rule(
      port.includes(':')
        ? `-A ufw-user-input -p ${proto} -m multiport --dports ${port} -j ACCEPT`
        : `-A ufw-user-input -p ${proto} --dport ${port} -j ACCEPT`,
    )
  // user.rules' LOGGING (loglevel low: the blocked packets of the DROP policies, rate-limited)
  rule(`-A ufw-after-logging-input -j LOG --log-prefix "[UFW BLOCK] " ${UFW_LOG_LIMIT}`)
  rule(`-A ufw-after-logging-forward -j LOG --log-prefix "[UFW BLOCK] " ${UFW_LOG_LIMIT}`)
  rule(`-A ufw-logging-deny -m conntrack --ctstate INVALID -j RETURN ${UFW_LOG_LIMIT}`)
  rule(`-A ufw-logging-deny -j LOG --log-prefix "[UFW BLOCK] " ${UFW_LOG_LIMIT}`)
  rule(`-A ufw-logging-allow -j LOG --log-prefix "[UFW ALLOW] " ${UFW_LOG_LIMIT}`)
  // user.rules' RATE LIMITING
  rule('-A ufw-user-limit -m limit --limit 3/minute -j LOG --log-prefix "[UFW LIMIT BLOCK] "')
  rule('-A ufw-user-limit -j REJECT')
  rule('-A ufw-user-limit-accept -j ACCEPT')
  // the user chains hooked at the end of the before chains
  for (const h of UFW_HOOKS) rule(`-A ufw-before-${h} -j ufw-user-${h}`)
  return {
    restore: f,
    policies: [
      ['INPUT', 'DROP'],
      ['FORWARD', 'DROP'],
    ],
  }
}
