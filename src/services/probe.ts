/**
 * `trace --probe`: after the walk, send the trace's packet for real from the
 * source pod's network namespace, through the source node's transport (the
 * lab's `ip netns exec`, SSH, the debug pod), and read on every node the walk
 * crosses, before and after: the interface counters, the counters of the
 * netfilter rules the walk used there (and of the drop rules of the chains it
 * crossed), and after the send the flow's conntrack entries
 * (src/collect/probe-read.ts). The source node reads, sends and reads again in
 * one exec (one round trip); the other nodes are read just before and just
 * after it, in parallel, one exec each. Nothing is changed on any node: the
 * reads only read, ping / nc send a few packets. src/analyze/probe-verdict.ts
 * decides what the counters mean.
 */
import ipaddr from 'ipaddr.js'

import {findingsAsTyped} from '../analyze/catalogue/as-typed.js'
import {probeChains, ruleCounterDeltas, rulesetsToRead} from '../analyze/probe-rules.js'
import {pointKey, type ProbeObservation, probePoints, probeVerdict} from '../analyze/probe-verdict.js'
import {parseProbeReads, type ProbeRead, type ProbeReadOptions, probeReadScript} from '../collect/probe-read.js'
import {PROBE_PACKETS, PROBE_PAYLOAD_PATTERN, PROBE_SMALL_SIZE} from '../defaults.js'
import type {InventoryNode} from '../model/inventory.js'
import {podNetnsPath, type Snapshot} from '../model/snapshot.js'
import type {Trace} from '../model/trace.js'
import type {Transport} from '../transport/types.js'
import {mapLimit} from '../util/exec.js'
import {shq} from '../util/shell.js'

export interface ProbeOptions {
  transportFor: (node: InventoryNode) => Transport
  /** each exec's bound (--timeout) */
  timeoutMs: number
  /** netctl's version, for a MODEL_DISAGREES report */
  version: string
  parallel?: number
}

const PATH_LINE = 'PATH=$PATH:/usr/sbin:/sbin:/usr/bin:/bin'
const SEND_MARK = '--- netctl-probe send'
const AFTER_MARK = '--- netctl-probe after'

/** What runs inside the source's namespace: the trace's packet, PROBE_PACKETS times, marked. */
export function sendCommand(trace: Trace): {tools: string[]; argv: string; sh: string} {
  const p = trace.packet
  if (!ipaddr.isValid(p.dst)) throw new Error(`not an IP address: ${p.dst}`)
  const v6 = ipaddr.parse(p.dst).kind() === 'ipv6'
  if (p.protocol === 'icmp') {
    // payload = IP packet size - IP header - ICMP header; the pattern marks the payload
    const payload = Math.max(0, p.size - (v6 ? 48 : 28))
    const argv = `ping -n -q -c ${PROBE_PACKETS} -i 0.2 -W 1 -s ${payload} -M ${p.df ? 'do' : 'dont'} -p ${PROBE_PAYLOAD_PATTERN} ${shq(p.dst)}`
    return {tools: ['ping'], argv, sh: argv}
  }
  const port = Number(p.port)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`not a port: ${p.port}`)
  if (p.protocol === 'tcp') {
    // a TCP connect: SYN out, SYN-ACK or RST back (either is an answer), then closed
    const argv = `nc -v -n -z -w 2 ${shq(p.dst)} ${port}`
    return {tools: ['nc'], argv, sh: argv}
  }
  const argv = `nc -u -n -w 1 ${shq(p.dst)} ${port}`
  return {tools: ['nc'], argv: `printf netctl-probe | ${argv}`, sh: argv}
}

/** The source node's script: a read, the send (inside the pod's netns when the source is a pod), a read. */
export function sourceScript(
  trace: Trace,
  netnsPath: string | undefined,
  read: {before: ProbeReadOptions; after: ProbeReadOptions} = {
    before: {iptables: false, nft: false},
    after: {after: true, iptables: false, nft: false},
  },
): string {
  const send = sendCommand(trace)
  const enter = netnsPath ? `nsenter --net=${shq(netnsPath)} ` : ''
  const need = [...(netnsPath ? ['nsenter'] : []), ...send.tools]
  const each =
    trace.packet.protocol === 'icmp'
      ? `${enter}${send.sh} 2>&1`
      : trace.packet.protocol === 'tcp'
        ? `i=0; while [ $i -lt ${PROBE_PACKETS} ]; do i=$((i+1)); ${enter}${send.sh} 2>&1; done`
        : `i=0; while [ $i -lt ${PROBE_PACKETS} ]; do i=$((i+1)); printf netctl-probe | ${enter}${send.sh} >/dev/null 2>&1; done`
  return [
    PATH_LINE,
    `for t in ${need.join(' ')}; do command -v "$t" >/dev/null 2>&1 || { echo "NOTOOLS $t"; exit 0; }; done`,
    probeReadScript(read.before),
    `echo; echo '${SEND_MARK}'`,
    each,
    `echo; echo '${AFTER_MARK}'`,
    probeReadScript(read.after),
    '',
  ].join('\n')
}

/** The source node's output: its read before, what the send printed, its read after. */
export function splitSourceOutput(out: string): {before?: ProbeRead; sendOut: string; after?: ProbeRead} {
  const [srcBefore = '', rest = ''] = out.split(SEND_MARK)
  const [sendOut = '', srcAfter = ''] = rest.split(AFTER_MARK)
  const [before] = parseProbeReads(srcBefore)
  const [after] = parseProbeReads(srcAfter)
  return {sendOut, ...(before ? {before} : {}), ...(after ? {after} : {})}
}

/** What two reads of every node on the path say: the interface deltas at the walk's points, the rules' deltas, the flow's conntrack entries. */
export function observed(
  trace: Trace,
  before: ReadonlyMap<string, ProbeRead>,
  after: ReadonlyMap<string, ProbeRead>,
): Pick<ProbeObservation, 'deltas' | 'rules'> & {conntrack: NonNullable<ProbeObservation['conntrack']>} {
  const deltas: ProbeObservation['deltas'] = {}
  for (const p of probePoints(trace)) {
    const x = before.get(p.node)?.links.get(p.interface)?.[p.direction]
    const y = after.get(p.node)?.links.get(p.interface)?.[p.direction]
    if (!x || !y) continue
    // what the interface received that the kernel counted as IPv6 multicast (neighbour discovery, MLD) is not
    // the probe's: left out, else a lost probe seems to arrive wherever a link chatters (issue 17). The read
    // order (src/collect/probe-read.ts) keeps this within what the interface counted.
    const m0 = p.direction === 'rx' ? before.get(p.node)?.ipv6Multicast.get(p.interface) : undefined
    const m1 = p.direction === 'rx' ? after.get(p.node)?.ipv6Multicast.get(p.interface) : undefined
    const packets = y.packets - x.packets
    const ipv6Multicast = m0 !== undefined && m1 !== undefined ? Math.min(Math.max(0, m1 - m0), packets) : 0
    deltas[pointKey(p)] = {
      packets: packets - ipv6Multicast,
      dropped: y.dropped - x.dropped,
      ...(ipv6Multicast > 0 ? {ipv6Multicast} : {}),
    }
  }
  const chains = probeChains(trace)
  const rulesets = (m: ReadonlyMap<string, ProbeRead>) => new Map([...m].map(([n, r]) => [n, r.rulesets]))
  const conntrack = [...after].flatMap(([node, read]) =>
    read.conntrack && read.conntrack.entries.length > 0 ? [{node, ...read.conntrack}] : [],
  )
  return {
    deltas,
    ...(chains.length > 0 ? {rules: ruleCounterDeltas(chains, rulesets(before), rulesets(after))} : {}),
    conntrack,
  }
}

/** Replies counted from the send's output: ping's summary line; a TCP connect that succeeded or was refused. */
export function answeredOf(protocol: Trace['packet']['protocol'], output: string): number | null {
  if (protocol === 'udp') return null
  if (protocol === 'icmp') return Number(/(\d+) (?:packets )?received/.exec(output)?.[1] ?? 0)
  return output.split('\n').filter((l) => /succeeded|refused/i.test(l)).length
}

/**
 * A DF ping bigger than PROBE_SMALL_SIZE that nothing answered, sent again small (after every
 * node's counters were read, so that it counts nowhere): answered, the path does not carry the
 * size, an MTU. Only then; a failure here is no answer.
 */
async function sendSmaller(
  trace: Trace,
  node: InventoryNode,
  netns: string | undefined,
  opts: ProbeOptions,
): Promise<ProbeObservation['smaller']> {
  const p = trace.packet
  if (p.protocol !== 'icmp' || !p.df || p.size <= PROBE_SMALL_SIZE) return undefined
  const send = sendCommand({...trace, packet: {...p, size: PROBE_SMALL_SIZE}})
  const r = await opts
    .transportFor(node)
    .exec(`${PATH_LINE}\n${netns ? `nsenter --net=${shq(netns)} ` : ''}${send.sh} 2>&1\n`, {timeoutMs: opts.timeoutMs})
    .catch(() => undefined)
  if (!r) return undefined
  return {size: PROBE_SMALL_SIZE, sent: PROBE_PACKETS, answered: answeredOf('icmp', r.stdout) ?? 0}
}

/** Send the trace's packet and read the counters; the trace comes back with its probe verdict (the caller derives the exit code again). */
export async function probeTrace(
  trace: Trace,
  snapshot: Snapshot,
  nodes: readonly InventoryNode[],
  opts: ProbeOptions,
): Promise<Trace> {
  const verdict = (obs: ProbeObservation): Trace => {
    const probed = probeVerdict(trace, obs, {
      version: opts.version,
      nodeIPs: Object.fromEntries(snapshot.nodes.map((n) => [n.name, n.internalIP])),
    })
    // the new findings' fixes as typed on this machine, like the walk's
    const added = findingsAsTyped(probed.findings.slice(trace.findings.length), snapshot)
    return {...probed, findings: [...trace.findings, ...added]}
  }
  const send = sendCommand(trace)
  const srcNode = nodes.find((n) => n.name === trace.src.node)
  const netns =
    trace.src.pod && trace.src.namespace && trace.src.node
      ? podNetnsPath(snapshot, {node: trace.src.node, namespace: trace.src.namespace, name: trace.src.pod})
      : undefined
  const command = `${netns ? `nsenter --net=${netns} ` : ''}${send.argv}${trace.packet.protocol === 'icmp' ? '' : ` (${PROBE_PACKETS} times)`}`
  const notSent = (note: string) => verdict({command, sent: 0, answered: null, deltas: {}, note})
  // kube-proxy sends each packet to an endpoint at random and the walk shows one of them: counters along one path would mislead
  if (trace.service)
    return notSent(
      'not sent: a Service DST is not probed yet (kube-proxy picks an endpoint per connection; probe an endpoint pod instead)',
    )
  if (!srcNode || trace.hops.length === 0)
    return notSent(`not sent: ${trace.src.node ?? 'the source'} was not collected`)
  if (trace.src.pod && !netns)
    return notSent(`not sent: ${srcNode.name} did not say where ${trace.src.pod}'s network namespace is`)

  const points = probePoints(trace)
  const chains = probeChains(trace)
  const flow = {
    src: trace.packet.src,
    dst: trace.packet.dst,
    protocol: trace.packet.protocol,
    ...(trace.packet.port !== undefined ? {port: trace.packet.port} : {}),
  }
  const readOf = (node: string, after: boolean): ProbeReadOptions => ({
    ...rulesetsToRead(chains, node),
    ...(after ? {after, conntrack: flow} : {}),
  })
  const others = [...new Set([...points.map((p) => p.node), ...chains.map((c) => c.node)])].filter(
    (n) => n !== srcNode.name,
  )
  const readAll = async (after: boolean): Promise<Map<string, ProbeRead>> => {
    const got = new Map<string, ProbeRead>()
    await mapLimit(others, opts.parallel ?? 16, async (name) => {
      const node = nodes.find((n) => n.name === name)
      if (!node) return
      const r = await opts
        .transportFor(node)
        .exec(`${PATH_LINE}\n${probeReadScript(readOf(name, after))}\n`, {timeoutMs: opts.timeoutMs})
        .catch(() => undefined)
      const read = r?.code === 0 ? parseProbeReads(r.stdout)[0] : undefined
      if (read) got.set(name, read)
    })
    return got
  }

  const before = await readAll(false)
  let out: string
  try {
    const script = sourceScript(trace, netns, {before: readOf(srcNode.name, false), after: readOf(srcNode.name, true)})
    const r = await opts.transportFor(srcNode).exec(script, {timeoutMs: opts.timeoutMs})
    out = r.stdout
  } catch (error) {
    return notSent(`not sent: ${srcNode.name}: ${(error as Error).message}`)
  }
  const missing = /^NOTOOLS (\S+)/m.exec(out)
  if (missing) return notSent(`not sent: no ${missing[1]} on ${srcNode.name}`)
  const after = await readAll(true)
  const src = splitSourceOutput(out)
  if (src.before) before.set(srcNode.name, src.before)
  if (src.after) after.set(srcNode.name, src.after)
  const sendOut = src.sendOut
  const {deltas, rules, conntrack} = observed(trace, before, after)
  const answered = answeredOf(trace.packet.protocol, sendOut)
  const smaller = answered === 0 ? await sendSmaller(trace, srcNode, netns, opts) : undefined
  const unread = others.filter((n) => !before.has(n) || !after.has(n))
  return verdict({
    command,
    sent: PROBE_PACKETS,
    answered,
    deltas,
    ...(rules ? {rules} : {}),
    conntrack,
    ...(smaller ? {smaller} : {}),
    ...(unread.length > 0 ? {note: `counters not read on ${unread.join(', ')}`} : {}),
  })
}
