/**
 * Addressing checks: every node has a pod subnet of its own inside the pod
 * network, flannel's subnet.env and cni0 agree with it, and the address
 * peers use for a node is really on it.
 */
import type {SnapshotNode} from '../../model/snapshot.js'
import {CATALOGUE} from '../catalogue/index.js'
import {contains, nthAddress, parsePrefix, type Prefix4, prefixContains, sameNetwork, stripPrefix} from '../ip.js'
import {ANN, type CheckContext} from './context.js'
import {addrLine, annotationLine, linkLine, someNames} from './evidence.js'
import {type Check, raise, type Raised} from './raise.js'

const podCIDRLine = (n: SnapshotNode, cidr?: string): string =>
  `${n.name}: spec.podCIDR: ${cidr ?? n.podCIDRs[0] ?? '""'}`

export const podcidrMissing: Check = (ctx) => {
  // Calico's IPAM hands out blocks itself; only flannel (kube subnet manager) needs spec.podCIDR
  if (ctx.profile.family !== 'flannel') return []
  return ctx.scopedNodes().flatMap((n): Raised[] => {
    if (n.podCIDRs.some((c) => parsePrefix(c) !== undefined)) return []
    const network = ctx.network(n.name)
    return [
      raise('PODCIDR_MISSING', {
        node: n.name,
        subject: n.name,
        message: `${n.name} has no podCIDR: flannel has no subnet to serve there and other nodes nothing to route to`,
        evidence: [podCIDRLine(n)],
        vars: {network, node: n.name, podCIDR: '<a free subnet of the pod network>'},
      }),
    ]
  })
}

/**
 * Nodes grouped by a value they should not share (a pod subnet, an address, a
 * VTEP MAC), in node order: one pass and a map, so that a clash among many
 * nodes is one group, never one pair per two of them.
 */
export function holdersOf(
  nodes: readonly SnapshotNode[],
  valuesOf: (n: SnapshotNode) => Iterable<string>,
): Map<string, SnapshotNode[]> {
  const holders = new Map<string, SnapshotNode[]>()
  const hold = (v: string, n: SnapshotNode) => {
    const list = holders.get(v)
    if (list) list.push(n)
    else holders.set(v, [n])
  }
  for (const n of nodes) {
    const values = valuesOf(n)
    // most nodes have one value (a podCIDR, an address): no set needed to count it once
    if (Array.isArray(values) && values.length < 2) for (const v of values as string[]) hold(v, n)
    else for (const v of new Set(values)) hold(v, n)
  }
  return holders
}

/**
 * The values (an address, a VTEP MAC) more than one node holds, each with its holders in node
 * order, in the order holdersOf lists them (by first holder). A node holds at most one value here,
 * and most values one node: only the first holder is remembered until a second comes, so a
 * cluster without a clash costs one map entry per node and nothing else.
 */
export function sharedBy(
  nodes: readonly SnapshotNode[],
  valueOf: (n: SnapshotNode) => string | undefined,
): Array<[value: string, holders: SnapshotNode[]]> {
  const first = new Map<string, number>()
  const shared = new Map<string, SnapshotNode[]>()
  nodes.forEach((n, at) => {
    const v = valueOf(n)
    if (v === undefined) return
    const held = first.get(v)
    if (held === undefined) first.set(v, at)
    else {
      const holders = shared.get(v)
      if (holders) holders.push(n)
      else shared.set(v, [nodes[held]!, n])
    }
  })
  return [...shared].sort((a, b) => first.get(a[0])! - first.get(b[0])!)
}

/** Each pod subnet and the nodes that hold it (Calico: their blocks), in node order; grouped once for both podCIDR checks. */
const holdersByNet = (ctx: CheckContext): Map<string, SnapshotNode[]> =>
  ctx.memo('holdersByNet', () => holdersOf(ctx.nodes, (n) => ctx.podNets(n)))

/**
 * One finding per subnet held by more than one node, naming every holder:
 * grouping through a map keeps the output linear in the number of nodes (a
 * finding per pair of holders would be quadratic).
 */
export const podcidrDuplicate: Check = (ctx) => {
  const out: Raised[] = []
  // a loop over every subnet of the cluster, most held once: nothing made for those
  for (const [net, holders] of holdersByNet(ctx)) if (holders.length > 1) out.push(podcidrDuplicateOf(net, holders))
  return out
}

function podcidrDuplicateOf(net: string, holders: SnapshotNode[]): Raised {
  const [keep, next] = holders as [SnapshotNode, SnapshotNode]
  const names = holders.map((h) => h.name)
  const many = holders.length > 2
  return raise('PODCIDR_DUPLICATE', {
    peers: names,
    subject: net,
    message: many
      ? `${holders.length} nodes hold ${net} (${someNames(names)}): they hand out the same pod addresses and the rest of the cluster routes them to one of them`
      : `${keep.name} and ${next.name} both hold ${net}: they hand out the same pod addresses and the rest of the cluster routes them to one of the two`,
    evidence: holders.map((h) => podCIDRLine(h, net)),
    vars: {node: next.name, podCIDR: net, keep: keep.name},
    ...(many
      ? {
          fixTemplate: `# ${holders.length} nodes hold <podCIDR>: keep it on <keep> and re-register each of the other ${holders.length - 1} (listed in the evidence) as below\n${CATALOGUE.PODCIDR_DUPLICATE.fix}`,
        }
      : {}),
  })
}

/**
 * Subnets of different length where one holds the other. CIDRs either nest or
 * are disjoint, so after sorting by (start, length) a stack of the enclosing
 * subnets finds every nested one in O(N log N); each outermost subnet gives one
 * finding listing everything inside it.
 */
function nestedSubnets(holders: Map<string, SnapshotNode[]>): Array<{outer: string; inner: string[]}> {
  const nets: Array<{net: string; p: Prefix4}> = []
  for (const net of holders.keys()) {
    const p = parsePrefix(net)
    if (p) nets.push({net, p})
  }
  nets.sort((a, b) => a.p.net - b.p.net || a.p.len - b.p.len)
  const groups = new Map<string, string[]>()
  const stack: typeof nets = []
  for (const x of nets) {
    while (stack.length > 0 && !prefixContains(stack.at(-1)!.p, x.p)) stack.pop()
    if (stack.length > 0) {
      const outer = stack[0]!.net
      const inner = groups.get(outer)
      if (inner) inner.push(x.net)
      else groups.set(outer, [x.net])
    }
    stack.push(x)
  }
  return [...groups].map(([outer, inner]) => ({outer, inner}))
}

export const podcidrOverlap: Check = (ctx) => {
  const holders = holdersByNet(ctx)
  const held = (net: string): SnapshotNode[] => holders.get(net) ?? []
  const whose = (net: string): string => `${someNames(held(net).map((h) => h.name))}'s ${net}`
  const between = nestedSubnets(holders).map(({outer, inner}): Raised => {
    const names = [...new Set([outer, ...inner].flatMap((net) => held(net).map((h) => h.name)))]
    return raise('PODCIDR_OVERLAP', {
      peers: names,
      subject: inner.length === 1 ? `${outer} / ${inner[0]}` : `${outer} / ${inner.length} subnets`,
      message:
        inner.length === 1
          ? `${whose(outer)} and ${whose(inner[0]!)} overlap: the longer prefix wins and some pods of the other become unreachable`
          : `${whose(outer)} overlaps ${inner.length} other pod subnets (${someNames(inner)}): the longer prefix wins and some pods of the other become unreachable`,
      evidence: [outer, ...inner].flatMap((net) => held(net).map((h) => podCIDRLine(h, net))),
      // the wider subnet is the one to give back
      vars: {network: ctx.network(), node: held(outer)[0]!.name},
    })
  })
  // the pod network over the nodes' own addresses: node-to-node traffic itself is misrouted
  const network = ctx.snapshot.cluster.clusterCIDR
  const underlay = ctx.scopedNodes().flatMap((n): Raised[] => {
    const ip = ctx.underlayIP(n)
    if (!contains(network, ip)) return []
    return [
      raise('PODCIDR_OVERLAP', {
        node: n.name,
        subject: `${network} / ${ip}`,
        message: `the pod network ${network} contains ${n.name}'s own address ${ip}`,
        evidence: [`clusterCIDR: ${network}`, `${n.name}: InternalIP: ${n.internalIP}`],
        vars: {network, node: n.name},
      }),
    ]
  })
  return [...between, ...underlay]
}

export const podcidrOutsideNetwork: Check = (ctx) =>
  ctx.scopedNodes().flatMap((n) => {
    const network = ctx.network(n.name)
    const fromEnv = ctx.state(n.name)?.flannelSubnetEnv?.FLANNEL_NETWORK !== undefined
    return ctx.podNets(n).flatMap((net): Raised[] => {
      if (contains(network, net)) return []
      return [
        raise('PODCIDR_OUTSIDE_NETWORK', {
          node: n.name,
          subject: net,
          message: `${n.name}'s pod subnet ${net} is outside the pod network ${network}`,
          evidence: [
            podCIDRLine(n, net),
            fromEnv
              ? `FLANNEL_NETWORK=${ctx.state(n.name)!.flannelSubnetEnv!.FLANNEL_NETWORK}`
              : `clusterCIDR: ${network}`,
          ],
          vars: {network},
        }),
      ]
    })
  })

export const subnetEnvMismatch: Check = (ctx) => {
  if (ctx.profile.family !== 'flannel') return []
  return ctx.collected().flatMap(({node, state}): Raised[] => {
    const env = state.flannelSubnetEnv
    if (!env || !ctx.ok(state, 'flannel-subnet-env')) return []
    const out: Raised[] = []
    const podCIDR = ctx.podNets(node)[0]
    const subnet = env.FLANNEL_SUBNET
    if (podCIDR && subnet && !sameNetwork(subnet, podCIDR)) {
      out.push(
        raise('SUBNET_ENV_MISMATCH', {
          node: node.name,
          subject: 'FLANNEL_SUBNET',
          message: `subnet.env on ${node.name} says FLANNEL_SUBNET=${subnet}, but the node's podCIDR is ${podCIDR}: new pods get addresses nobody routes to this node`,
          evidence: [`FLANNEL_SUBNET=${subnet}`, podCIDRLine(node, podCIDR)],
          vars: {node: node.name},
        }),
      )
    }
    const mtu = env.FLANNEL_MTU
    const dev = ctx.profile.tunnel ? ctx.link(state, ctx.profile.tunnel.dev) : ctx.uplink(node, state)
    if (mtu && /^\d+$/.test(mtu) && dev && ctx.ok(state, 'links') && Number(mtu) !== dev.mtu) {
      out.push(
        raise('SUBNET_ENV_MISMATCH', {
          node: node.name,
          subject: 'FLANNEL_MTU',
          message: `subnet.env on ${node.name} says FLANNEL_MTU=${mtu}, but ${dev.name} has MTU ${dev.mtu}: new pods get an MTU the path does not match`,
          evidence: [`FLANNEL_MTU=${mtu}`, linkLine(dev)],
          vars: {node: node.name},
        }),
      )
    }
    return out
  })
}

export const bridgeAddrMismatch: Check = (ctx) => {
  const bridge = ctx.profile.bridge
  if (!bridge) return []
  return ctx.collected().flatMap(({node, state}): Raised[] => {
    if (!ctx.ok(state, 'links', 'addresses')) return []
    const link = ctx.link(state, bridge)
    const podCIDR = ctx.podNets(node)[0]
    if (!link || !podCIDR) return []
    const expected = nthAddress(podCIDR, 1)!
    const addrs = state.addresses.filter((a) => a.dev === bridge && a.family === 'inet')
    if (addrs.some((a) => `${a.local}/${a.prefixlen}` === expected)) return []
    // a bridge without an address and without pods: the bridge plugin sets it with the first pod
    if (addrs.length === 0 && !state.links.some((l) => l.master === bridge)) return []
    return [
      raise('BRIDGE_ADDR_MISMATCH', {
        node: node.name,
        subject: bridge,
        message: `${bridge} on ${node.name} has ${addrs.length ? addrs.map((a) => `${a.local}/${a.prefixlen}`).join(', ') : 'no IPv4 address'}, not ${expected} (the gateway of its podCIDR ${podCIDR})`,
        evidence: addrs.length ? addrs.map((a) => addrLine(a, link.ifindex)) : [linkLine(link)],
        vars: {bridgeAddr: expected},
      }),
    ]
  })
}

export const nodeIpMismatch: Check = (ctx) => [...sharedUnderlayIP(ctx), ...addressNotOnNode(ctx)]

/** Nodes that announce the same underlay address: peers send what is meant for all of them to one. */
function sharedUnderlayIP(ctx: CheckContext): Raised[] {
  return sharedBy(ctx.nodes, (n) => ctx.underlayIP(n) || undefined).map(([ip, holders]): Raised => {
    const names = holders.map((h) => h.name)
    return raise('NODE_IP_MISMATCH', {
      peers: names,
      subject: `shared address ${ip}`,
      message: `${holders.length} nodes announce ${ip} (${someNames(names)}): peers aim tunnels, routes and sessions for all of them at whichever answers`,
      evidence: holders.map((h) =>
        h.internalIP === ip
          ? `${h.name}: InternalIP: ${ip}`
          : `${h.name}: underlay address ${ip} (InternalIP ${h.internalIP})`,
      ),
      vars: {node: names[1]!, keep: names[0]!, ip},
      fixTemplate:
        "# every node needs an address of its own: keep <ip> on <keep>, give each other node listed its own (kubelet --node-ip, the CNI's public-ip / IPv4Address), e.g. on <node>:\nkubectl get node <node> -o wide",
    })
  })
}

function addressNotOnNode(ctx: CheckContext): Raised[] {
  return ctx.collected().flatMap(({node, state}): Raised[] => {
    if (!ctx.ok(state, 'addresses', 'links')) return []
    const mine = new Set(state.addresses.filter((a) => a.family === 'inet').map((a) => a.local))
    const uplink = ctx.uplink(node, state)?.name ?? 'eth0'
    const out: Raised[] = []
    const claim = (what: string, ip: string, evidence: string): void => {
      out.push(
        raise('NODE_IP_MISMATCH', {
          node: node.name,
          subject: `${what} ${ip}`,
          message: `${node.name}'s ${what} ${ip} is not an address of the node: peers aim tunnels and sessions at an address that does not lead here`,
          evidence: [
            evidence,
            ...state.addresses
              .filter((a) => a.family === 'inet' && a.scope === 'global')
              .map((a) => addrLine(a, ctx.link(state, a.dev)?.ifindex)),
          ],
          vars: {dev: uplink},
        }),
      )
    }
    if (!mine.has(node.internalIP)) claim('InternalIP', node.internalIP, `${node.name}: InternalIP: ${node.internalIP}`)
    const pub = node.annotations[ANN.flannelPublicIP]
    if (ctx.profile.family === 'flannel' && pub && pub !== node.internalIP && !mine.has(pub))
      claim('flannel public-ip', pub, annotationLine(ANN.flannelPublicIP, pub))
    const cal = node.annotations[ANN.calicoIPv4]
    if (ctx.profile.family === 'calico' && cal && !mine.has(stripPrefix(cal)))
      claim('Calico IPv4Address', stripPrefix(cal), annotationLine(ANN.calicoIPv4, cal))
    // flannel sends from the vxlan device's local address: it must be the one it announces
    const vx =
      ctx.profile.family === 'flannel' && ctx.profile.tunnel?.kind === 'vxlan'
        ? ctx.link(state, ctx.profile.tunnel.dev)
        : undefined
    const announced = ctx.underlayIP(node)
    if (vx?.vxlan?.local && vx.vxlan.local !== announced && mine.has(announced)) {
      out.push(
        raise('NODE_IP_MISMATCH', {
          node: node.name,
          subject: `${vx.name} local ${vx.vxlan.local}`,
          message: `${vx.name} on ${node.name} sends from ${vx.vxlan.local}, but the node announces ${announced} to its peers`,
          evidence: [
            linkLine(vx),
            pub ? annotationLine(ANN.flannelPublicIP, pub) : `${node.name}: InternalIP: ${node.internalIP}`,
          ],
          vars: {dev: vx.vxlan.dev ?? uplink},
        }),
      )
    }
    return out
  })
}
