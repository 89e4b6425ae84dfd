/**
 * `check --probe`: the probe of every node pair (one pod per node) summarised
 * as the matrix of which pairs really carry pod traffic, and the probe's
 * findings grouped by cause, so that a router dropping vxlan between two
 * subnets is one UNDERLAY_DROP naming the pairs, not one per pair. Pure: the
 * walks and their probed traces (src/services/probe-matrix.ts) come in.
 */
import type {Finding} from '../model/finding.js'
import type {Snapshot} from '../model/snapshot.js'
import type {Disposition, Hop, ProbePoint, ProbeResult, Trace} from '../model/trace.js'
import {findingsAsTyped} from './catalogue/as-typed.js'
import {makeFinding} from './catalogue/index.js'
import {cellOf, type MatrixEndpoint} from './matrix.js'
import {encapOnWire} from './probe-verdict.js'

/** One node pair's probe: what the walk said, what the packet did, and where it was lost. */
export interface ProbePair {
  src: string
  dst: string
  srcNode: string
  dstNode: string
  /** carried: the packet was answered (or, UDP, counted to the end); lost; not-sent: the node could not send (note) */
  status: 'carried' | 'lost' | 'not-sent'
  /** the walk's own disposition (the reply's when the request was delivered and the reply not) */
  walk: Disposition
  /** after the probe: UNDERLAY_DROP where the packet left one node and never reached the next */
  disposition: Disposition
  verdict: ProbeResult['verdict']
  sent: number
  answered: number | null
  lastSeen: ProbePoint | null
  firstMissing: ProbePoint | null
  /** codes of the findings the probe added (UNDERLAY_DROP, MODEL_DISAGREES) */
  findings: string[]
  note?: string
}

export interface ProbeMatrix {
  /** the pod each node is probed from and to: the first by namespace/name with a network namespace its node showed */
  endpoints: MatrixEndpoint[]
  /** what each pair sends from the source pod's namespace */
  sends: string
  /** row-major, the diagonal left out */
  pairs: ProbePair[]
  counts: {pairs: number; carried: number; lost: number; notSent: number}
}

/** One pair as walked, and as probed. */
export interface ProbedPair {
  src: MatrixEndpoint
  dst: MatrixEndpoint
  walk: Trace
  probed: Trace
}

function status(t: Trace): ProbePair['status'] {
  const p = t.probe
  if (!p || p.verdict === 'not-sent') return 'not-sent'
  if (p.answered !== null) return p.answered > 0 ? 'carried' : 'lost'
  // UDP has no reply: carried when the walk and the counters agree it arrived
  return t.disposition === 'DELIVERED' && p.verdict === 'confirmed' ? 'carried' : 'lost'
}

export function probePairOf(r: ProbedPair): ProbePair {
  const walked = r.walk.findings.length
  const p = r.probed.probe
  return {
    src: r.src.id,
    dst: r.dst.id,
    srcNode: r.src.node,
    dstNode: r.dst.node,
    status: status(r.probed),
    walk: cellOf(r.src, r.dst, r.walk).disposition,
    disposition: cellOf(r.src, r.dst, r.probed).disposition,
    verdict: p?.verdict ?? 'not-sent',
    sent: p?.sent ?? 0,
    answered: p?.answered ?? null,
    lastSeen: p?.lastSeen ?? null,
    firstMissing: p?.firstMissing ?? null,
    findings: [...new Set(r.probed.findings.slice(walked).map((f) => f.code))],
    ...(p?.note ? {note: p.note} : {}),
  }
}

/** The hop the probe marked UNDERLAY_DROP: its packet carries the encapsulation the underlay dropped. */
function droppedAt(t: Trace): Hop | undefined {
  return [...t.hops, ...(t.returnPath?.hops ?? [])].find((h) => h.findings?.includes('UNDERLAY_DROP'))
}

/** The encapsulation on the wire where the underlay dropped it, and a capture of it leaving the sender. */
function droppedWire(t: Trace, senderIP: string): {encap: string; capture: string} {
  return encapOnWire(droppedAt(t)?.packet?.encap.at(-1), senderIP, {src: t.packet.src, dst: t.packet.dst})
}

/** A pair's counter lines (`forward node1 eth0 tx +3 packets, …`), but for where it was last seen and first missed. */
const COUNTER_LINE = /^(?:forward|return) (\S+ \S+ (?:rx|tx)) \+\d+ packets/

function pairEvidence(t: Trace, f: Finding): string[] {
  const keep = [t.probe?.lastSeen, t.probe?.firstMissing].flatMap((p) =>
    p ? [`${p.node} ${p.interface} ${p.direction}`] : [],
  )
  return f.evidence.filter((e) => {
    const m = COUNTER_LINE.exec(e)
    return !m || keep.includes(m[1]!)
  })
}

const pairName = (r: ProbedPair): string => `${r.src.node} → ${r.dst.node}`

interface Group {
  key: string
  code: Finding['code']
  cause: string
  members: Array<{pair: ProbedPair; finding: Finding}>
}

/**
 * The probe's findings, one per cause: UNDERLAY_DROP by the encapsulation the underlay drops,
 * MODEL_DISAGREES by what the walk said and what the packet did. A cause of one pair keeps
 * that pair's finding as trace --probe gives it; a cause of several names every pair.
 */
export function groupProbeFindings(
  results: readonly ProbedPair[],
  snapshot: Pick<Snapshot, 'cluster' | 'nodes'>,
): Finding[] {
  const nodeIPs = Object.fromEntries(snapshot.nodes.map((n) => [n.name, n.internalIP]))
  const groups = new Map<string, Group>()
  for (const r of results) {
    for (const f of r.probed.findings.slice(r.walk.findings.length)) {
      const cause =
        f.code === 'UNDERLAY_DROP'
          ? droppedWire(r.probed, '').encap
          : `the walk says ${cellOf(r.src, r.dst, r.walk).disposition}, the packet was ${status(r.probed)}`
      const key = `${f.code}\u0000${cause}`
      let g = groups.get(key)
      if (!g) groups.set(key, (g = {key, code: f.code, cause, members: []}))
      g.members.push({pair: r, finding: f})
    }
  }
  // a pair's own finding is typed for this machine already (probeTrace); a merged one is made here
  return [...groups.values()].map((g) =>
    g.members.length === 1 ? g.members[0]!.finding : findingsAsTyped([merged(g, nodeIPs)], snapshot)[0]!,
  )
}

function merged(g: Group, nodeIPs: Record<string, string>): Finding {
  const first = g.members[0]!
  const pairs = g.members.map((m) => pairName(m.pair))
  // a pair's counters but where it was lost are in its own trace --probe; here they would be N² lines
  const evidence = g.members.flatMap((m) =>
    pairEvidence(m.pair.probed, m.finding).map((e) => `${pairName(m.pair)}: ${e}`),
  )
  const receivers = [...new Set(g.members.map((m) => m.pair.dst.node))]
  const subject = `${pairs.length} node pairs: ${pairs.join(', ')}`
  if (g.code === 'UNDERLAY_DROP') {
    const ip = (n: string) => nodeIPs[n] ?? n
    const senders = [...new Set(g.members.map((m) => m.pair.src.node))]
    const listed = g.members.map(
      (m) => `${m.pair.src.node} (${ip(m.pair.src.node)}) → ${m.pair.dst.node} (${ip(m.pair.dst.node)})`,
    )
    // every sender's packets, each as its own pair's capture shows them
    const captures = [
      ...new Set(
        g.members.map(
          (m) => droppedWire(m.pair.probed, ip(m.pair.probed.probe?.lastSeen?.node ?? m.pair.src.node)).capture,
        ),
      ),
    ]
    return makeFinding('UNDERLAY_DROP', {
      ...(receivers.length === 1 ? {node: receivers[0]!} : {}),
      subject,
      message: `the underlay drops ${g.cause} between ${pairs.length} node pairs (sender → receiver): ${listed.join(', ')}; each pair's packets left the sender's uplink and never arrived on the receiver's`,
      evidence,
      vars: {
        nodeIP: `each sender (${senders.map(ip).join(', ')})`,
        peerIP: 'its receiver in the pairs above',
        peer: receivers.join(', '),
        encap: g.cause,
        capture: captures.length === 1 ? captures[0]! : captures.map((c) => `(${c})`).join(' or '),
      },
    })
  }
  const {node: _node, ...rest} = first.finding
  const nodes = [...new Set(g.members.map((m) => m.finding.node))]
  return {
    ...rest,
    ...(nodes.length === 1 && nodes[0] !== undefined ? {node: nodes[0]} : {}),
    subject,
    message: `${g.cause} on ${pairs.length} node pairs (${pairs.join(', ')}); the first: ${first.finding.message}`,
    evidence,
  }
}

/** The matrix of every pair's probe. */
export function probeMatrixOf(endpoints: MatrixEndpoint[], sends: string, results: readonly ProbedPair[]): ProbeMatrix {
  const pairs = results.map(probePairOf)
  const count = (s: ProbePair['status']) => pairs.filter((p) => p.status === s).length
  return {
    endpoints,
    sends,
    pairs,
    counts: {pairs: pairs.length, carried: count('carried'), lost: count('lost'), notSent: count('not-sent')},
  }
}
