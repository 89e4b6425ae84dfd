/**
 * Firewall checks on iptables rule sets, clear cases only: a FORWARD policy
 * of DROP that nothing accepting pod traffic precedes, a DROP / REJECT that
 * names pod addresses or the encapsulation port before anything accepts
 * them, and rules split between the legacy and nft backends.
 */
import type {NftTable} from '../../model/netfilter.js'
import type {IptablesRule, NodeState} from '../../model/node-state.js'
import type {SnapshotNode} from '../../model/snapshot.js'
import {nftEncapFix, UFW_ENCAP_FIX} from '../catalogue/overlay.js'
import {contains, overlaps} from '../ip.js'
import {addrType} from '../netfilter/addr-type.js'
import {evaluateNftChain, type NftPacket, type NftResult} from '../netfilter/nft.js'
import {chainOwner, iptablesNftTables, ufwManages} from '../netfilter/owned-tables.js'
import type {MatchEnv} from '../netfilter/xt-match.js'
import type {CheckContext} from './context.js'
import {ifaceMatches, pathLinks, podPath} from './devices.js'
import {chainLine} from './evidence.js'
import {
  applies,
  appliesReached,
  isAccept,
  isDrop,
  reachableRules,
  type ReachedRule,
  ruleCount,
  ruleSets,
  tableOf,
  type TrafficShape,
} from './iptables-walk.js'
import {type Check, raise, type Raised} from './raise.js'

/**
 * kube-proxy accepts in KUBE-FORWARD only what it marked 0x4000 itself
 * (traffic it masquerades); that is no accept for plain pod-to-pod traffic.
 * Other mark accepts (Calico's cali-FORWARD accepts what its policy marked)
 * may well be.
 */
function kubeProxyMarkOnly(r: IptablesRule): boolean {
  return (
    r.chain.startsWith('KUBE-') &&
    (r.match.other ?? []).length > 0 &&
    r.match.other!.every((o) => o.startsWith('mark '))
  )
}

/** An ACCEPT that may take new pod traffic. */
function mayAccept({rule: r}: ReachedRule, shape: TrafficShape): boolean {
  return isAccept(r) && !kubeProxyMarkOnly(r) && applies(r, shape) !== 'no'
}

/** New pod-to-pod traffic through the node: addresses in the pod network, interfaces on the pod path. */
function podTraffic(ctx: CheckContext, node: SnapshotNode, state: NodeState): TrafficShape {
  const network = ctx.network(node.name)
  const devs = pathLinks(podPath(ctx, node, state)).map((l) => l.name)
  return {address: (cidr) => overlaps(cidr, network), iface: (p) => devs.some((d) => ifaceMatches(p, d))}
}

export const forwardPolicyDrop: Check = (ctx) =>
  ctx.collected().flatMap(({node, state}) =>
    ruleSets(state).flatMap((set): Raised[] => {
      const filter = tableOf(set.iptables, 'filter')
      const forward = filter?.chains.find((c) => c.name === 'FORWARD')
      if (!filter || forward?.policy !== 'DROP') return []
      const shape = podTraffic(ctx, node, state)
      const rules = reachableRules(filter, 'FORWARD')
      if (rules.some((r) => mayAccept(r, shape))) return []
      const network = ctx.network(node.name)
      return [
        raise('FORWARD_POLICY_DROP', {
          node: node.name,
          subject: `filter FORWARD (${set.tool})`,
          message: `the FORWARD chain on ${node.name} drops by policy and no rule accepts the pod network ${network}: routed pod traffic is dropped`,
          evidence: ['*filter', chainLine(forward), ...forward.rules.slice(0, 8).map((r) => r.raw)],
          vars: {network},
        }),
      ]
    }),
  )

/** The first DROP / REJECT that surely hits the traffic, unless something that may accept it comes first. */
function firstClearDrop(rules: ReachedRule[], shape: TrafficShape): IptablesRule | undefined {
  for (const x of rules) {
    if (mayAccept(x, shape)) return undefined
    if (isDrop(x.rule) && appliesReached(x, shape) === 'yes') return x.rule
  }
  return undefined
}

/** A drop that names pod addresses: one with neither source nor destination is a general policy, not this. */
const namesAddresses = (r: IptablesRule): boolean => r.match.source !== undefined || r.match.destination !== undefined

export const firewallDrop: Check = (ctx) =>
  ctx.collected().flatMap(({node, state}) =>
    ruleSets(state).flatMap((set): Raised[] => {
      const filter = tableOf(set.iptables, 'filter')
      if (!filter) return []
      const shape = podTraffic(ctx, node, state)
      const rules = reachableRules(filter, 'FORWARD', shape).filter((x) => !isDrop(x.rule) || namesAddresses(x.rule))
      const drop = firstClearDrop(rules, shape)
      if (!drop) return []
      return [
        raise('FIREWALL_DROP', {
          node: node.name,
          subject: `filter ${drop.chain} (${set.tool})`,
          message: `${node.name} ${drop.target === 'REJECT' ? 'rejects' : 'drops'} forwarded pod traffic (${[drop.match.source && `from ${drop.match.source}`, drop.match.destination && `to ${drop.match.destination}`].filter(Boolean).join(' ')}) before any rule accepts it`,
          evidence: ['*filter', drop.raw],
          vars: {rule: drop.raw, table: 'filter', chain: drop.chain},
        }),
      ]
    }),
  )

/**
 * The node's own nftables base chains of type filter at `hook` (families ip and inet; not iptables-nft's tables,
 * which the rule sets above read), in priority order, for one packet: the chain that surely drops it. A base
 * chain's accept ends only that chain; a drop in any drops. Unsure of a rule, or split by numgen: nothing.
 */
function nftDrop(
  state: NodeState,
  hook: 'input' | 'output',
  p: NftPacket,
): {table: NftTable; result: NftResult} | undefined {
  if (!state.nft || state.sections.nftables?.status !== 'ok') return undefined
  const owned = iptablesNftTables(state)
  const env: MatchEnv = {addrType: (ip, dev) => addrType(state, ip, dev)}
  const chains = state.nft.tables
    .filter((t) => t.family === 'inet' || (t.family === 'ip' && !owned.has(t.name)))
    .flatMap((t) =>
      t.chains.filter((c) => c.hook === hook && c.type === 'filter' && c.prio !== undefined).map((c) => ({t, c})),
    )
    .sort((a, b) => a.c.prio! - b.c.prio!)
  for (const {t, c} of chains) {
    const result = evaluateNftChain(t, c, p, env)
    if (result.alternatives || result.uncertain.length > 0) return undefined
    if (result.verdict !== 'accept') return {table: t, result}
  }
  return undefined
}

export const encapPortBlocked: Check = (ctx) => {
  const t = ctx.profile.tunnel
  if (!t?.port) return []
  const port = t.port
  return ctx.collected().flatMap(({node, state}) => {
    const uplink = ctx.uplink(node, state)
    const peers = ctx.peers(node.name).map((p) => ctx.underlayIP(p))
    const shape: TrafficShape = {
      address: (cidr) => peers.some((ip) => contains(cidr, ip)) || contains(cidr, ctx.underlayIP(node)),
      iface: (p) => uplink !== undefined && ifaceMatches(p, uplink.name),
      udpPort: port,
    }
    // the node's own nftables tables (firewalld's, a hand-written one): one VXLAN packet each way, to and from
    // its first peer (one a node keeps the check linear; a firewall rarely tells the peers apart)
    const self = ctx.underlayIP(node)
    const peer = peers[0]
    const native = (['INPUT', 'OUTPUT'] as const).flatMap((chain): Raised[] => {
      if (!peer || !uplink) return []
      const inbound = chain === 'INPUT'
      const p: NftPacket = {
        src: inbound ? peer : self,
        dst: inbound ? self : peer,
        protocol: 'udp',
        dport: port,
        ...(inbound ? {in: uplink.name} : {out: uplink.name}),
        ctstate: 'NEW',
        ctdir: 'ORIGINAL',
        mark: 0,
      }
      const d = nftDrop(state, inbound ? 'input' : 'output', p)
      if (!d) return []
      const {table: nt, result: r} = d
      return [
        raise('ENCAP_PORT_BLOCKED', {
          node: node.name,
          subject: `udp ${port} (${chain}, nft ${nt.family} ${nt.name})`,
          message: `${node.name} ${r.verdict === 'reject' ? 'rejects' : 'drops'} ${inbound ? 'incoming' : 'outgoing'} ${t.dev} traffic (UDP ${port}) in nft ${nt.family} ${nt.name} chain ${r.chain}: pods cannot reach other nodes' pods`,
          evidence: [`table ${nt.family} ${nt.name} chain ${r.chain}:`, ...r.evidence],
          vars: {node: node.name, port, peerIP: peer, family: nt.family, nftTable: nt.name, chain: r.chain},
          fixTemplate: nftEncapFix(nt.family, nt.name),
        }),
      ]
    })
    return [
      ...native,
      ...ruleSets(state).flatMap((set): Raised[] => {
        const filter = tableOf(set.iptables, 'filter')
        if (!filter) return []
        return (['INPUT', 'OUTPUT'] as const).flatMap((chain): Raised[] => {
          const rules = reachableRules(filter, chain, shape)
          const drop = firstClearDrop(rules, shape)
          // nothing may accept it and the chain drops by policy (ufw's INPUT DROP without the CNI's port allowed)
          const policy = filter.chains.find((c) => c.name === chain)?.policy
          const byPolicy = !drop && policy === 'DROP' && !rules.some((x) => mayAccept(x, shape))
          if (!drop && !byPolicy) return []
          const from =
            drop?.match.source && !drop.match.negated?.includes('source') ? drop.match.source : (peers[0] ?? '')
          const where = drop ? `in filter ${drop.chain}` : `by the ${chain} chain's policy DROP`
          // ufw's chains, or the policy ufw set: the port is opened through ufw
          const ufw = ufwManages(filter, chain) && (!drop || chainOwner(drop.chain) === 'ufw')
          return [
            raise('ENCAP_PORT_BLOCKED', {
              node: node.name,
              subject: `udp ${port} (${chain}, ${set.tool})`,
              message: `${node.name} ${drop?.target === 'REJECT' ? 'rejects' : 'drops'} ${chain === 'INPUT' ? 'incoming' : 'outgoing'} ${t.dev} traffic (UDP ${port}) ${where}: pods cannot reach other nodes' pods`,
              evidence: ['*filter', drop ? drop.raw : `-P ${chain} DROP`],
              vars: {node: node.name, port, peerIP: from},
              ...(ufw && chain === 'INPUT' ? {fixTemplate: UFW_ENCAP_FIX} : {}),
            }),
          ]
        })
      }),
    ]
  })
}

export const iptablesBackendSplit: Check = (ctx) =>
  ctx.collected().flatMap(({node, state}): Raised[] => {
    const sets = ruleSets(state).filter((s) => ruleCount(s.iptables) > 0)
    const legacy = sets.find((s) => s.variant === 'legacy')
    const nft = sets.find((s) => s.variant === 'nft')
    if (!legacy || !nft) return []
    const sample = (s: (typeof sets)[number]): string[] => [
      `${s.tool} (${s.variant === 'nft' ? 'nf_tables' : 'legacy'}): ${ruleCount(s.iptables)} rules`,
      ...s.iptables.tables.flatMap((t) => t.chains.flatMap((c) => c.rules.map((r) => r.raw))).slice(0, 3),
    ]
    return [
      raise('IPTABLES_BACKEND_SPLIT', {
        node: node.name,
        subject: 'iptables legacy + nf_tables',
        message: `${node.name} has rules in both iptables backends (${ruleCount(legacy.iptables)} legacy, ${ruleCount(nft.iptables)} nf_tables): each tool shows only its own half`,
        evidence: [...sample(legacy), ...sample(nft)],
        vars: {},
      }),
    ]
  })
