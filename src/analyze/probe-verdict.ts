/**
 * `trace --probe`: what the walk and one real packet say together. Pure: the
 * walk (a Trace) and the counter deltas read around the packet come in, the
 * trace with its probe verdict (and, where they part, a finding) goes out.
 *
 * The counters are per interface in each node's host namespace (`ip -s -j link`),
 * so the probe's packets are counted with whatever else crossed the interface
 * meanwhile: a point "saw" the probe when its delta is at least the packets
 * sent. Other traffic can only add to a delta, so a point that did not see them
 * really did not; a point that did might be fooled by other traffic. What the
 * kernel itself tells apart is left out before (src/services/probe.ts): the IPv6
 * multicast an interface received — neighbour discovery and MLD, which every
 * link with IPv6 sends on its own, the probe never. Other unicast traffic on a
 * busy uplink (a transport whose connection crosses it) still counts.
 */
import type {Finding} from '../model/finding.js'
import type {
  Encapsulation,
  Hop,
  ProbeConntrack,
  ProbeCounter,
  ProbePoint,
  ProbeResult,
  ProbeRuleCounter,
  Trace,
} from '../model/trace.js'
import {makeFinding} from './catalogue/index.js'
import {hostHop, nftRuleKey} from './probe-rules.js'

/** A point the probe reads, in the order the packet passes it, with the hop that put it there. */
export interface PlannedPoint extends ProbePoint {
  path: 'forward' | 'return'
  /** index of the hop in its path */
  hop: number
  /** a node's uplink the packet leaves by to cross the underlay (an `underlay` hop's out) */
  underlay?: {encap?: Encapsulation}
}

/** "node1 eth0 tx": the key of a point, the same for a planned point and a counter read. */
export function pointKey(p: ProbePoint): string {
  return `${p.node} ${p.interface} ${p.direction}`
}

// where the packet leaves a node's namespace, or is dropped on its way out (a vxlan device without FDB entry counts it in tx dropped)
const LEAVES_BY = new Set(['veth', 'underlay', 'encap', 'drop'])

function pathPoints(trace: Trace, hops: readonly Hop[], path: 'forward' | 'return'): PlannedPoint[] {
  const points: PlannedPoint[] = []
  hops.forEach((hop, i) => {
    if (!hostHop(trace, hop)) return
    // a bridge hop's `in` is a port only when the frame just came from a pod; else it is the bridge's own device, which transmits
    const fromPod = i > 0 && !hostHop(trace, hops[i - 1]!)
    if (hop.action === 'udp-forward') {
      // flannel's udp daemon: the kernel sends the packet into the TUN on the way out (its tx), the daemon writes it into the TUN on the way in (its rx)
      if (hop.out === undefined && hop.in !== undefined)
        points.push({node: hop.node, interface: hop.in, direction: 'tx', path, hop: i})
      else if (hop.in !== undefined) points.push({node: hop.node, interface: hop.in, direction: 'rx', path, hop: i})
      if (hop.out !== undefined) points.push({node: hop.node, interface: hop.out, direction: 'rx', path, hop: i})
      return
    }
    if (hop.in !== undefined && (hop.action !== 'bridge' || fromPod))
      points.push({node: hop.node, interface: hop.in, direction: 'rx', path, hop: i})
    if (hop.out !== undefined && LEAVES_BY.has(hop.action)) {
      const encap = hop.packet?.encap.at(-1)
      points.push({
        node: hop.node,
        interface: hop.out,
        direction: 'tx',
        path,
        hop: i,
        ...(hop.action === 'underlay' ? {underlay: encap ? {encap} : {}} : {}),
      })
    }
  })
  return points
}

/**
 * Where the probe reads counters: every interface of a node's host namespace the walk
 * crosses, received on its way in and sent on its way out, forward then (but for UDP,
 * which has no reply) the return path. A point passed twice is read once, where first passed.
 */
export function probePoints(trace: Trace): PlannedPoint[] {
  const all = [
    ...pathPoints(trace, trace.hops, 'forward'),
    ...(trace.returnPath && trace.packet.protocol !== 'udp' ? pathPoints(trace, trace.returnPath.hops, 'return') : []),
  ]
  const seen = new Set<string>()
  return all.filter((p) => !seen.has(pointKey(p)) && seen.add(pointKey(p)) !== undefined)
}

/** What the probe measured: the packets sent, the replies, and each point's counter delta. */
export interface ProbeObservation {
  command: string
  sent: number
  /** null: UDP, no reply to count */
  answered: number | null
  /** pointKey → delta of packets (the IPv6 multicast received left out, and said) and drops; a point absent here could not be read */
  deltas: Record<string, {packets: number; dropped: number; ipv6Multicast?: number}>
  /** why nothing was sent (no ping / nc / nsenter on the node, the send timed out) */
  note?: string
  /** the netfilter rules read around the send (src/analyze/probe-rules.ts), with their deltas */
  rules?: ProbeRuleCounter[]
  /** the flow's conntrack entries per node, read after the send */
  conntrack?: ProbeConntrack[]
  /** the lost big DF ping sent again at `size` bytes (IP packet): its replies */
  smaller?: {size: number; sent: number; answered: number}
}

export interface ProbeContext {
  /** netctl's version, for a MODEL_DISAGREES report */
  version: string
  /** node name → underlay (InternalIP) address */
  nodeIPs: Record<string, string>
}

const strip = ({node, interface: iface, direction}: ProbePoint): ProbePoint => ({node, interface: iface, direction})
const pointText = (p: ProbePoint): string => `${p.node} ${p.interface} ${p.direction === 'rx' ? 'in' : 'out'}`
const counterText = (c: ProbeCounter): string =>
  `${c.path} ${c.node} ${c.interface} ${c.direction} +${c.packets} packets, +${c.dropped} dropped${
    c.ipv6Multicast ? ` (and +${c.ipv6Multicast} IPv6 multicast, not the probe's)` : ''
  }`
const ruleText = (r: ProbeRuleCounter): string =>
  `the counter of \`${r.rule}\` (${r.ruleset} ${r.table}, ${r.node}) rose by ${r.packets}`

/**
 * The rule the walk drops the packet at: the last rule of the dropping hop's evidence,
 * when the hop is a netfilter drop (a DENIED walk). The policy of a chain has no counter
 * iptables-save prints per packet of a flow, so a drop by policy is not looked for.
 */
function droppingRule(path: {hops: readonly Hop[]}, rules: readonly ProbeRuleCounter[]): ProbeRuleCounter | undefined {
  const hop = path.hops.at(-1)
  if (hop?.action !== 'drop') return undefined
  const at = rules.filter((r) => r.node === hop.node && r.used && r.drops)
  for (const line of [...hop.evidence].reverse()) {
    // as probe-rules keys them: the walk's remark after four spaces dropped, an nft counter's values too
    const key = nftRuleKey(line.split('    (')[0]!.trim())
    const rule = at.find((r) => key === r.rule)
    if (rule) return rule
  }
  return undefined
}

/** The sizes on the wire of the lost big probe and the answered small one, when a smaller ping got through. */
function underlayMtu(
  trace: Trace,
  at: PlannedPoint,
  smaller: ProbeObservation['smaller'],
): {big: number; small: number} | undefined {
  if (!smaller || smaller.answered === 0) return undefined
  const path = at.path === 'forward' ? trace.hops : (trace.returnPath?.hops ?? [])
  const big = path[at.hop]?.packet?.size ?? trace.packet.size
  // the encapsulation adds the same headers to either size
  return {big, small: smaller.size + (big - trace.packet.size)}
}

/** The encapsulation between two nodes as the underlay carries it, and a tcpdump filter that shows it leaving `fromIP`. */
export function encapOnWire(
  encap: Encapsulation | undefined,
  fromIP: string,
  inner: {src: string; dst: string},
): {encap: string; capture: string} {
  if (!encap)
    return {
      encap: `the pod traffic itself (no encapsulation: ${inner.src} → ${inner.dst} routed between the nodes)`,
      capture: `host ${inner.src} and host ${inner.dst}`,
    }
  if (encap.type === 'ipip') return {encap: 'IP protocol 4 (IPIP)', capture: `ip proto 4 and src host ${fromIP}`}
  const port = encap.port ?? (encap.type === 'udp' ? 8285 : 8472)
  const what = encap.type === 'vxlan' ? `vxlan${encap.vni === undefined ? '' : ` VNI ${encap.vni}`}` : 'flannel udp'
  return {encap: `UDP ${port} (${what})`, capture: `udp port ${port} and src host ${fromIP}`}
}

/**
 * The trace with its probe result. Walk delivered and packet answered: confirmed. Walk
 * delivered, packet lost, last seen leaving a node's uplink and not seen on the next
 * node: UNDERLAY_DROP (disposition and finding). Walk not delivered and packet lost:
 * confirmed, noting whether the counters lost it where the walk drops it. Any other
 * disagreement: MODEL_DISAGREES.
 */
export function probeVerdict(trace: Trace, obs: ProbeObservation, ctx: ProbeContext): Trace {
  const points = probePoints(trace)
  const counters: ProbeCounter[] = points.flatMap((p) => {
    const d = obs.deltas[pointKey(p)]
    return d
      ? [
          {
            ...strip(p),
            path: p.path,
            packets: d.packets,
            dropped: d.dropped,
            ...(d.ipv6Multicast ? {ipv6Multicast: d.ipv6Multicast} : {}),
          },
        ]
      : []
  })
  const rules = obs.rules ?? []
  const base = {
    command: obs.command,
    sent: obs.sent,
    answered: obs.answered,
    counters,
    ...(obs.rules ? {rules: obs.rules} : {}),
    ...(obs.conntrack ? {conntrack: obs.conntrack} : {}),
    ...(obs.smaller ? {smaller: obs.smaller} : {}),
  }
  if (obs.sent === 0) {
    const probe: ProbeResult = {
      verdict: 'not-sent',
      ...base,
      lastSeen: null,
      firstMissing: null,
      note: obs.note ?? 'nothing was sent',
    }
    return {...trace, probe}
  }

  // points that could be read, in path order; seen when they counted every packet sent
  const read = points.filter((p) => obs.deltas[pointKey(p)] !== undefined)
  const saw = (p: PlannedPoint) => obs.deltas[pointKey(p)]!.packets >= obs.sent
  const missingAt = read.findIndex((p) => !saw(p))
  const firstMissing = missingAt < 0 ? undefined : read[missingAt]
  const lastSeen = (missingAt < 0 ? read : read.slice(0, missingAt)).filter(saw).at(-1)
  const located = {lastSeen: lastSeen ? strip(lastSeen) : null, firstMissing: firstMissing ? strip(firstMissing) : null}

  const walkDelivered =
    trace.disposition === 'DELIVERED' &&
    (trace.packet.protocol === 'udp' || trace.returnPath?.disposition === 'DELIVERED')
  const arrived =
    obs.answered === null ? read.filter((p) => p.path === 'forward').every(saw) && read.length > 0 : obs.answered > 0
  const answeredText =
    obs.answered === null ? `${obs.sent} sent (UDP: no reply to count)` : `${obs.answered} of ${obs.sent} answered`

  if (walkDelivered && arrived) {
    const note = firstMissing
      ? `confirmed: ${answeredText}; the counter of ${pointText(firstMissing)} did not count them all (other traffic, or a device that does not count this way)`
      : `confirmed: ${answeredText}`
    return {...trace, probe: {verdict: 'confirmed', ...base, ...located, note}}
  }
  if (!walkDelivered && !arrived) {
    const path = trace.disposition === 'DELIVERED' ? trace.returnPath! : trace
    const dropHop = path.hops.at(-1)
    const where = dropHop ? `${dropHop.node}, hop ${path.hops.length}` : 'the source'
    const pathName = path === trace ? 'forward' : 'return'
    const agrees =
      dropHop !== undefined && lastSeen !== undefined && lastSeen.path === pathName && lastSeen.node === dropHop.node
    // the dropping rule's own counter is the strongest confirmation: it counted the packets the walk says it drops
    const rule = droppingRule(path, rules)
    const counted = rule && rule.packets > 0 ? `; ${ruleText(rule)}` : ''
    const note = agrees
      ? `confirmed: ${answeredText}, and the counters lost the packet on ${where} where the walk drops it (last seen: ${pointText(lastSeen!)})${counted}`
      : counted
        ? `confirmed: ${answeredText}${counted}, where the walk drops it on ${where}`
        : lastSeen?.path === pathName && firstMissing
          ? // the walk stops at its drop: every point read lies before it, so the loss is on the way there
            `confirmed: ${answeredText}; the counters last saw it at ${pointText(lastSeen)} and not at ${pointText(firstMissing)}, on its way to ${where} where the walk drops it`
          : `confirmed: ${answeredText}, but the counters last saw it ${lastSeen ? `at ${pointText(lastSeen)}` : 'nowhere'}, not on ${where} where the walk drops it`
    return {...trace, probe: {verdict: 'confirmed', ...base, ...located, note}}
  }

  const evidence = [
    `walk: ${trace.disposition}${trace.returnPath ? `, reply ${trace.returnPath.disposition}` : ''}; probe: ${answeredText} (${obs.command})`,
    ...(lastSeen
      ? [`last seen: ${pointText(lastSeen)} (${lastSeen.path} hop ${lastSeen.hop + 1})`]
      : ['last seen: nowhere on the path']),
    ...(firstMissing
      ? [`not seen: ${pointText(firstMissing)} (${firstMissing.path} hop ${firstMissing.hop + 1})`]
      : []),
    ...counters.map(counterText),
    // the drop rules that counted: the accepting ones count every packet of the node, the probe's among them
    ...rules.filter((r) => r.drops && r.packets > 0).map(ruleText),
    ...(obs.conntrack ?? []).flatMap((c) => c.entries.map((e) => `conntrack on ${c.node}: ${e}`)),
  ]

  // lost after leaving one node's uplink, before the next node counted it: the underlay
  const between =
    lastSeen?.underlay && firstMissing && firstMissing.node !== lastSeen.node && firstMissing.path === lastSeen.path
      ? {from: lastSeen, to: firstMissing, refused: false}
      : undefined
  // or the uplink itself counted them as dropped on their way out (its link into the underlay refused them: a
  // veth whose peer's MTU is lower, a port that is down), and the tunnel device before it did not send them either
  const refusedAt = firstMissing
    ? points.find(
        (p) =>
          p.underlay &&
          p.path === firstMissing.path &&
          p.node === firstMissing.node &&
          p.hop >= firstMissing.hop &&
          (obs.deltas[pointKey(p)]?.dropped ?? 0) >= obs.sent,
      )
    : undefined
  const next = refusedAt
    ? points.find((p) => p.path === refusedAt.path && p.hop > refusedAt.hop && p.node !== refusedAt.node)
    : undefined
  const leaving = between ?? (refusedAt && next ? {from: refusedAt, to: next, refused: true} : undefined)
  if (walkDelivered && leaving) {
    const lastSeen = leaving.from
    const firstMissing = leaving.to
    const from = {
      node: lastSeen.node,
      ip: lastSeen.underlay?.encap?.outerSrc ?? ctx.nodeIPs[lastSeen.node] ?? lastSeen.node,
    }
    const to = {
      node: firstMissing.node,
      ip: lastSeen.underlay?.encap?.outerDst ?? ctx.nodeIPs[firstMissing.node] ?? firstMissing.node,
    }
    const inner =
      lastSeen.path === 'forward'
        ? {src: trace.packet.src, dst: trace.packet.dst}
        : {src: trace.packet.dst, dst: trace.packet.src}
    const wire = encapOnWire(lastSeen.underlay?.encap, from.ip, inner)
    // the same packet smaller got through: not the encapsulation but its size, a link between the nodes with a lower MTU
    const mtu = underlayMtu(trace, lastSeen, obs.smaller)
    const finding = makeFinding('UNDERLAY_DROP', {
      // the node the fix's command runs on: where the packets should arrive (the capture), or whence the big ping goes
      node: mtu ? from.node : to.node,
      subject: `${from.node} (${from.ip}) → ${to.node} (${to.ip})`,
      message: `the underlay between ${from.node} (${from.ip}) and ${to.node} (${to.ip}) drops ${
        mtu
          ? `packets of ${mtu.big} bytes, ${wire.encap}, while ${mtu.small}-byte ones pass: a link between them has an MTU below ${mtu.big}`
          : wire.encap
      }: ${
        leaving.refused
          ? `${from.node}'s ${lastSeen.interface} dropped them on their way out (its link into the underlay refused them)`
          : `the packets left ${from.node}'s ${lastSeen.interface} and never arrived on ${to.node}'s ${firstMissing.interface}`
      }`,
      evidence: mtu
        ? [
            ...evidence,
            `the same ping at ${obs.smaller!.size} bytes (${mtu.small} on the wire): ${obs.smaller!.answered} of ${obs.smaller!.sent} answered`,
          ]
        : evidence,
      vars: {nodeIP: from.ip, peerIP: to.ip, peer: to.node, encap: wire.encap, capture: wire.capture},
    })
    if (mtu)
      finding.fix = [
        `# every link between ${from.node} and ${to.node} (router, switch, bridge ports, a tunnel) must carry ${mtu.big}-byte packets: raise its MTU, or lower the pod network's MTU by the difference`,
        `# then this must be answered from ${from.node}'s host namespace (the outer packet's size, DF set):`,
        `ping -M do -c 3 -s ${mtu.big - 28} ${to.ip}`,
      ].join('\n')
    const path = lastSeen.path === 'forward' ? trace : trace.returnPath!
    const hops = path.hops.map((h, i) =>
      i === lastSeen.hop ? {...h, findings: [...(h.findings ?? []), 'UNDERLAY_DROP']} : h,
    )
    const probe: ProbeResult = {
      verdict: 'underlay-drop',
      ...base,
      ...located,
      note: `${answeredText}: lost between ${from.node} and ${to.node}, in the underlay${mtu ? ` (packets of ${mtu.big} bytes do not pass, ${mtu.small} bytes do: an MTU below ${mtu.big})` : ''}`,
    }
    const findings: Finding[] = [...trace.findings, finding]
    return lastSeen.path === 'forward'
      ? {...trace, disposition: 'UNDERLAY_DROP', hops, findings, probe}
      : {...trace, returnPath: {disposition: 'UNDERLAY_DROP', hops}, findings, probe}
  }

  // a drop rule on the path counted packets the walk says pass: the rule the model got wrong
  const dropped = !arrived && walkDelivered ? rules.find((r) => r.drops && r.packets > 0) : undefined
  const parts = dropped
    ? `\`${dropped.rule}\` on ${dropped.node}, whose counter rose by ${dropped.packets}`
    : firstMissing
      ? `${pointText(firstMissing)}`
      : lastSeen
        ? `after ${pointText(lastSeen)}`
        : 'the source'
  const finding = makeFinding('MODEL_DISAGREES', {
    ...(dropped
      ? {node: dropped.node}
      : firstMissing
        ? {node: firstMissing.node}
        : lastSeen
          ? {node: lastSeen.node}
          : {}),
    subject: `${trace.packet.src} → ${trace.packet.dst} ${trace.packet.protocol}`,
    message: `the walk says ${trace.disposition}${trace.returnPath && trace.disposition === 'DELIVERED' ? ` (reply ${trace.returnPath.disposition})` : ''} but the real packet was ${arrived ? 'answered' : 'lost'}; they part at ${parts}`,
    evidence: [...evidence, `netctl ${ctx.version}`],
    vars: {},
  })
  const probe: ProbeResult = {
    verdict: 'model-disagrees',
    ...base,
    ...located,
    note: `${answeredText}; the walk said ${trace.disposition}${dropped ? `, but ${ruleText(dropped)}` : ''}`,
  }
  return {...trace, findings: [...trace.findings, finding], probe}
}
