import {createHash} from 'node:crypto'

import {shjoin} from '../../util/shell.js'
import {CALICO_VXLAN} from '../backends/calico.js'
import type {NsScript} from '../script.js'
import type {LabNode, LabPlan} from '../types.js'
import {type FelixIpset, felixPolicyChains} from './felix-policy.js'
import {RestoreFile} from './restore.js'

/**
 * Felix's iptables dataplane (projectcalico/calico felix/rules/static.go,
 * endpoints.go, nat.go; felix/iptables/ renderer, match_builder, actions):
 * the cali-* chains in raw, mangle, nat and filter, their ipsets
 * (felix/ipsets names: cali40 + set id), the per-workload sysctls and the
 * PERMANENT neighbour per local pod. Default FelixConfiguration: mark bits
 * 0xffff0000 (accept 0x10000, pass 0x20000, scratch0 0x40000, scratch1 0x80000),
 * ChainInsertMode insert, DefaultEndpointToHostAction ACCEPT, natOutgoing pool.
 */

export const MARK_ACCEPT = 0x10000
const MARK_PASS = 0x20000
export const MARK_SCRATCH0 = 0x40000
const ALL_MARK_BITS = 0xf0000
const hex = (n: number): string => `0x${n.toString(16)}`

/** Felix's ipset names: `cali40` + the set id for IPv4 main sets. */
export const FELIX_IPSETS = {
  allPools: 'cali40all-ipam-pools',
  masqPools: 'cali40masq-ipam-pools',
  allHosts: 'cali40all-hosts-net',
  allVxlan: 'cali40all-vxlan-net',
} as const

/** One Felix rule: its match and action fragments in Felix's render order, plus comments. */
export interface Rule {
  match?: string
  action: string
  comment?: string
}

/**
 * The `cali:` hash comments, computed as felix/generictables RuleHashes does:
 * sha224 over the chain name, then chained over each rule rendered with `HASH`
 * in place of the hash comment; URL-safe base64, first 16 characters.
 */
export function felixRuleHashes(chain: string, rules: readonly Rule[]): string[] {
  let hash = createHash('sha224').update(chain).digest()
  return rules.map((r) => {
    hash = createHash('sha224')
      .update(hash)
      .update(render(`-A ${chain}`, r, 'HASH'))
      .digest()
    return hash.toString('base64url').slice(0, 16)
  })
}

/** A rule's fragments after the chain, in Felix's order: hash comment, comments, match, action. */
function render(verb: string, r: Rule, hashFragment: string): string {
  return [
    verb,
    hashFragment,
    ...(r.comment ? [`-m comment --comment "${r.comment}"`] : []),
    ...(r.match ? [r.match] : []),
    r.action,
  ].join(' ')
}

/**
 * Felix's rules of one chain: its own chains in full; rules it inserts at the
 * top of a built-in chain (`insert`) or appends to one (`append`, hashed under
 * `<chain>*appends*` as felix/iptables/table.go does).
 */
export function emit(
  f: RestoreFile,
  table: string,
  chain: string,
  rules: readonly Rule[],
  mode: 'own' | 'insert' | 'append' = 'own',
): void {
  if (mode === 'own') f.chain(table, chain)
  const insert = mode === 'insert'
  const hashes = felixRuleHashes(mode === 'append' ? `${chain}*appends*` : chain, rules)
  rules.forEach((r, i) =>
    f.rule(
      table,
      render(insert ? `-I ${chain} ${i + 1}` : `-A ${chain}`, r, `-m comment --comment "cali:${hashes[i]}"`),
    ),
  )
}

export const jump = (c: string): Rule => ({action: `--jump ${c}`})
export const setMark = (m: number): string => `--jump MARK --set-mark ${hex(m)}/${hex(m)}`
export const clearMark = (m: number): string => `--jump MARK --set-mark 0/${hex(m)}`
export const markSet = (m: number): string => `-m mark --mark ${hex(m)}/${hex(m)}`
export const markClear = (m: number): string => `-m mark --mark 0/${hex(m)}`

export function felixVxlan(plan: LabPlan): boolean {
  return plan.backend === 'calico-vxlan' || plan.backend === 'calico-vxlan-crosssubnet'
}

/** `ipset restore` input: the sets Felix keeps and their members. */
export function felixIpsets(plan: LabPlan): string {
  const create = (name: string): string => `create ${name} hash:net family inet hashsize 1024 maxelem 1048576`
  const L = [
    create(FELIX_IPSETS.allPools),
    `add ${FELIX_IPSETS.allPools} ${plan.clusterCIDR}`,
    create(FELIX_IPSETS.masqPools),
    `add ${FELIX_IPSETS.masqPools} ${plan.clusterCIDR}`,
  ]
  L.push(create(FELIX_IPSETS.allHosts), ...plan.nodes.map((n) => `add ${FELIX_IPSETS.allHosts} ${n.ip}`))
  if (felixVxlan(plan))
    L.push(create(FELIX_IPSETS.allVxlan), ...plan.nodes.map((n) => `add ${FELIX_IPSETS.allVxlan} ${n.ip}`))
  return `${L.join('\n')}\n`
}

/** Felix's chains for one node (iptables-restore --noflush input). */
export function felixIptables(plan: LabPlan, node: LabNode): RestoreFile {
  const f = new RestoreFile()
  const vxlan = felixVxlan(plan)
  const port = CALICO_VXLAN.port
  const pods = plan.pods.filter((p) => p.node === node.name)
  const acceptedByHep: Rule = {
    match: markSet(MARK_ACCEPT),
    action: '--jump ACCEPT',
    comment: 'Host endpoint policy accepted packet.',
  }

  // raw: untrack VXLAN, reverse-path check for workloads
  emit(f, 'raw', 'PREROUTING', [jump('cali-PREROUTING')], 'insert')
  emit(f, 'raw', 'OUTPUT', [jump('cali-OUTPUT')], 'insert')
  emit(f, 'raw', 'cali-PREROUTING', [
    {action: clearMark(ALL_MARK_BITS)},
    ...(vxlan ? [{match: `-p udp --dport ${port}`, action: '--jump NOTRACK'}] : []),
    {match: '--in-interface cali+', action: setMark(MARK_SCRATCH0)},
    {match: markSet(MARK_SCRATCH0), action: '--jump cali-rpf-skip'},
    {match: `${markSet(MARK_SCRATCH0)} -m rpfilter --invert --validmark`, action: '--jump DROP'},
    {match: markClear(MARK_SCRATCH0), action: '--jump cali-from-host-endpoint'},
    {match: markSet(MARK_ACCEPT), action: '--jump ACCEPT'},
  ])
  emit(f, 'raw', 'cali-OUTPUT', [
    {action: clearMark(ALL_MARK_BITS)},
    ...(vxlan ? [{match: `-p udp --dport ${port}`, action: '--jump NOTRACK'}] : []),
    jump('cali-to-host-endpoint'),
    {match: markSet(MARK_ACCEPT), action: '--jump ACCEPT'},
  ])
  for (const c of ['cali-rpf-skip', 'cali-from-host-endpoint', 'cali-to-host-endpoint']) f.chain('raw', c)

  // mangle
  emit(f, 'mangle', 'PREROUTING', [jump('cali-PREROUTING')], 'insert')
  emit(f, 'mangle', 'POSTROUTING', [jump('cali-POSTROUTING')], 'insert')
  emit(f, 'mangle', 'cali-PREROUTING', [
    {match: '-m conntrack --ctstate RELATED,ESTABLISHED', action: '--jump ACCEPT'},
    {match: markSet(MARK_ACCEPT), action: '--jump ACCEPT'},
    jump('cali-from-host-endpoint'),
    acceptedByHep,
  ])
  emit(f, 'mangle', 'cali-POSTROUTING', [
    {match: markSet(MARK_ACCEPT), action: '--jump RETURN'},
    {action: clearMark(ALL_MARK_BITS)},
    {match: '-m conntrack --ctstate DNAT', action: '--jump cali-to-host-endpoint'},
    acceptedByHep,
  ])
  for (const c of ['cali-from-host-endpoint', 'cali-to-host-endpoint']) f.chain('mangle', c)

  // nat: outgoing NAT for the natOutgoing pool, and the VXLAN tunnel source
  emit(f, 'nat', 'PREROUTING', [jump('cali-PREROUTING')], 'insert')
  emit(f, 'nat', 'OUTPUT', [jump('cali-OUTPUT')], 'insert')
  emit(f, 'nat', 'POSTROUTING', [jump('cali-POSTROUTING')], 'insert')
  emit(f, 'nat', 'cali-PREROUTING', [jump('cali-fip-dnat')])
  emit(f, 'nat', 'cali-OUTPUT', [jump('cali-fip-dnat')])
  emit(f, 'nat', 'cali-POSTROUTING', [
    jump('cali-fip-snat'),
    jump('cali-nat-outgoing'),
    ...(vxlan
      ? [
          {
            match:
              '--out-interface vxlan.calico -m addrtype ! --src-type LOCAL --limit-iface-out -m addrtype --src-type LOCAL',
            action: '--jump MASQUERADE --random-fully',
          },
        ]
      : []),
  ])
  emit(f, 'nat', 'cali-nat-outgoing', [
    {
      match: `-m set --match-set ${FELIX_IPSETS.masqPools} src -m set ! --match-set ${FELIX_IPSETS.allPools} dst`,
      action: '--jump MASQUERADE --random-fully',
    },
  ])
  for (const c of ['cali-fip-dnat', 'cali-fip-snat']) f.chain('nat', c)

  // filter
  emit(f, 'filter', 'INPUT', [jump('cali-INPUT')], 'insert')
  emit(f, 'filter', 'FORWARD', [jump('cali-FORWARD')], 'insert')
  emit(f, 'filter', 'OUTPUT', [jump('cali-OUTPUT')], 'insert')
  emit(f, 'filter', 'cali-INPUT', [
    ...(vxlan
      ? [
          {
            match: `-p 17 -m multiport --destination-ports ${port} -m set --match-set ${FELIX_IPSETS.allVxlan} src -m addrtype --dst-type LOCAL`,
            action: '--jump ACCEPT',
            comment: 'Allow IPv4 VXLAN packets from allowed hosts',
          },
          {
            match: `-p 17 -m multiport --destination-ports ${port} -m addrtype --dst-type LOCAL`,
            action: '--jump DROP',
            comment: 'Drop IPv4 VXLAN packets from non-allowed hosts',
          },
        ]
      : []),
    {match: '--in-interface cali+', action: '--goto cali-wl-to-host'},
    {match: markSet(MARK_ACCEPT), action: '--jump ACCEPT'},
    {action: clearMark(ALL_MARK_BITS)},
    jump('cali-from-host-endpoint'),
    acceptedByHep,
  ])
  emit(f, 'filter', 'cali-wl-to-host', [
    jump('cali-from-wl-dispatch'),
    {action: '--jump ACCEPT', comment: 'Configured DefaultEndpointToHostAction'},
  ])
  emit(f, 'filter', 'cali-FORWARD', [
    {action: clearMark(ALL_MARK_BITS & ~MARK_ACCEPT)},
    {match: markClear(MARK_ACCEPT), action: '--jump cali-from-hep-forward'},
    {match: '--in-interface cali+', action: '--jump cali-from-wl-dispatch'},
    {match: '--out-interface cali+', action: '--jump cali-to-wl-dispatch'},
    jump('cali-to-hep-forward'),
    jump('cali-cidr-block'),
  ])
  // appended to FORWARD after everything else: what the policy accepted is accepted
  emit(
    f,
    'filter',
    'FORWARD',
    [
      {match: markSet(MARK_ACCEPT), action: '--jump ACCEPT', comment: 'Policy explicitly accepted packet.'},
      {action: setMark(MARK_ACCEPT)},
    ],
    'append',
  )
  emit(f, 'filter', 'cali-OUTPUT', [
    {match: markSet(MARK_ACCEPT), action: '--jump ACCEPT'},
    {match: '--out-interface cali+', action: '--jump RETURN'},
    ...(vxlan
      ? [
          {
            match: `-p 17 -m multiport --destination-ports ${port} -m addrtype --src-type LOCAL`,
            action: '--jump ACCEPT',
            comment: 'Allow IPv4 VXLAN packets to other allowed hosts',
          },
        ]
      : []),
    {action: clearMark(ALL_MARK_BITS)},
    {match: '-m conntrack ! --ctstate DNAT', action: '--jump cali-to-host-endpoint'},
    acceptedByHep,
  ])
  for (const c of [
    'cali-from-host-endpoint',
    'cali-to-host-endpoint',
    'cali-from-hep-forward',
    'cali-to-hep-forward',
    'cali-cidr-block',
  ])
    f.chain('filter', c)

  // per workload: dispatch on the cali interface to its from-/to- chains, each
  // running the namespace profile (kns.<namespace>: allow all, as Kubernetes without policies)
  const unknown: Rule = {action: '--jump DROP', comment: 'Unknown interface'}
  emit(f, 'filter', 'cali-from-wl-dispatch', [
    ...pods.map((p) => ({match: `--in-interface ${p.hostVeth}`, action: `--goto cali-fw-${p.hostVeth}`})),
    unknown,
  ])
  emit(f, 'filter', 'cali-to-wl-dispatch', [
    ...pods.map((p) => ({match: `--out-interface ${p.hostVeth}`, action: `--goto cali-tw-${p.hostVeth}`})),
    unknown,
  ])
  const namespaces = [...new Set(pods.map((p) => p.namespace))]
  for (const ns of namespaces) {
    for (const dir of ['pri', 'pro'])
      emit(f, 'filter', `cali-${dir}-kns.${ns}`, [
        {action: setMark(MARK_ACCEPT)},
        {match: markSet(MARK_ACCEPT), action: '--jump RETURN'},
      ])
  }
  felixWorkloadChains(f, plan, node)
  return f
}

/**
 * What Felix's endpoint manager writes per local workload besides the CNI's
 * veth and route (felix/dataplane/linux/endpoint_mgr.go configureProcSysForInterface; the static ARP entry from felix/routetable/route_table.go):
 * proxy_arp, route_localnet and forwarding on the cali interface, and a
 * PERMANENT neighbour for the pod's IP and MAC (the MAC read from the pod).
 */
export function felixWorkloadState(s: NsScript, plan: LabPlan, node: LabNode): void {
  for (const p of plan.pods.filter((x) => x.node === node.name)) {
    s.sysctl(`net.ipv4.conf.${p.hostVeth}.proxy_arp`, 1)
    s.sysctl(`net.ipv4.conf.${p.hostVeth}.route_localnet`, 1)
    s.sysctl(`net.ipv4.conf.${p.hostVeth}.forwarding`, 1)
    s.sysctl(`net.ipv4.neigh.${p.hostVeth}.proxy_delay`, 0)
    s.raw(
      `ip neigh replace ${shjoin([p.ip])} lladdr "$(ip netns exec ${shjoin([p.netns])} cat /sys/class/net/eth0/address)" dev ${shjoin([p.hostVeth])} nud permanent`,
    )
  }
}

/**
 * The per-workload chains of one node: cali-tw-/cali-fw- per local pod, and the
 * cali-pi-/cali-po- chains of the policies that select them (felix-policy.ts).
 * Declared in full, so `iptables-restore --noflush` replaces what they held:
 * `lab policy apply | delete` reprogram with exactly this.
 */
export function felixWorkloadChains(
  f: RestoreFile,
  plan: LabPlan,
  node: LabNode,
): {chains: string[]; ipsets: FelixIpset[]} {
  const port = CALICO_VXLAN.port
  const pods = plan.pods.filter((p) => p.node === node.name)
  const programmed = felixPolicyChains(f, plan, pods)
  for (const p of pods) {
    const common: Rule[] = [
      {match: '-m conntrack --ctstate RELATED,ESTABLISHED', action: '--jump ACCEPT'},
      {match: '-m conntrack --ctstate INVALID', action: '--jump DROP'},
      {action: clearMark(MARK_ACCEPT | MARK_PASS)},
    ]
    // the default tier: each selecting policy in turn, return if one accepted, else the end-of-tier drop
    const tier = (chains: readonly string[]): Rule[] =>
      chains.length === 0
        ? []
        : [
            {action: clearMark(MARK_PASS), comment: 'Start of tier default'},
            ...chains.flatMap((c): Rule[] => [
              {match: markClear(MARK_PASS), action: `--jump ${c}`},
              {match: markSet(MARK_ACCEPT), action: '--jump RETURN', comment: 'Return if policy accepted'},
            ]),
            {
              match: markClear(MARK_PASS),
              action: '--jump DROP',
              comment: 'End of tier default. Drop if no policies passed packet',
            },
          ]
    const profile = (dir: string): Rule[] => [
      jump(`cali-${dir}-kns.${p.namespace}`),
      {match: markSet(MARK_ACCEPT), action: '--jump RETURN', comment: 'Return if profile accepted'},
      {action: '--jump DROP', comment: 'Drop if no profiles matched'},
    ]
    const sel = programmed.selecting(p)
    emit(f, 'filter', `cali-tw-${p.hostVeth}`, [...common, ...tier(sel.ingress), ...profile('pri')])
    emit(f, 'filter', `cali-fw-${p.hostVeth}`, [
      ...common,
      {
        match: `-p udp -m multiport --destination-ports ${port}`,
        action: '--jump DROP',
        comment: 'Drop VXLAN encapped packets originating in workloads',
      },
      {match: '-p ipencap', action: '--jump DROP', comment: 'Drop IPinIP encapped packets originating in workloads'},
      ...tier(sel.egress),
      ...profile('pro'),
    ])
  }
  return {chains: programmed.chains, ipsets: programmed.ipsets}
}
