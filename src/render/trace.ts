/**
 * `netctl trace` as text and JSON. Text reads top to bottom the way a person
 * asks: did it get there (the verdict), which way did it go (numbered hops
 * with the state behind each), how did the reply come back, what is wrong and
 * how to fix it. JSON is exactly the Trace (schemas/trace.schema.json).
 */
import {DISPOSITION_GUIDE} from '../analyze/catalogue/index.js'
import type {Snapshot} from '../model/snapshot.js'
import type {Disposition, Endpoint, Hop, Packet, PathResult, ProbePoint, ProbeResult, Trace} from '../model/trace.js'
import {printable} from '../util/text.js'
import {colors} from './color.js'
import {findingsText} from './finding.js'
import {terminalWidth, wrapLine} from './width.js'

/** `--json` / `-o json`: the trace, nothing added. */
export function traceJson(trace: Trace): Trace {
  return trace
}

function dispositionColor(d: Disposition): (s: string) => string {
  const c = colors()
  return d === 'DELIVERED' ? c.green.bold : d === 'INSUFFICIENT_INFO' ? c.yellow.bold : c.red.bold
}

/** "pod-node1-1 (172.20.1.2)", "prod/web (10.244.3.7)", "node2 (172.31.0.12)" */
export function endpointLabel(e: Endpoint): string {
  const name = e.pod ? (e.namespace && e.namespace !== 'default' ? `${e.namespace}/${e.pod}` : e.pod) : e.node
  return printable(name ? `${name} (${e.ip})` : e.ip)
}

/** "icmp 84 bytes", "tcp/8080 84 bytes DF" */
export function packetLabel(p: Packet): string {
  const proto = p.port !== undefined && p.protocol !== 'icmp' ? `${p.protocol}/${p.port}` : p.protocol
  return `${proto} ${p.size} bytes${p.df ? ' DF' : ''}`
}

/** The outer header an encap / decap / underlay hop deals in: "vxlan VNI 1 172.31.0.11 → 172.31.0.13 udp/8472, 134 bytes". */
function encapNote(hop: Hop): string | undefined {
  if (!['encap', 'decap', 'underlay', 'udp-forward'].includes(hop.action)) return undefined
  const outer = hop.packet?.encap.at(-1)
  if (!outer) return hop.packet && hop.action === 'decap' ? `inner ${hop.packet.src} → ${hop.packet.dst}` : undefined
  const vni = outer.vni === undefined ? '' : ` VNI ${outer.vni}`
  const port = outer.port === undefined ? '' : ` udp/${outer.port}`
  return `${outer.type}${vni} ${outer.outerSrc} → ${outer.outerDst}${port}, ${hop.packet!.size} bytes`
}

/** Numbered hops, "node / netns  in → out  action", evidence indented under each; the cluster's names and lines made printable (util/text.ts); wrapped at the terminal's width, a hop's rest under its evidence, an evidence line's rest deeper still. */
export function hopsText(hops: readonly Hop[], indent = '  ', width = terminalWidth()): string {
  const c = colors()
  if (hops.length === 0) return `${indent}${c.dim('(no hops)')}`
  const where = hops.map((h) => printable(h.netns && h.netns !== h.node ? `${h.node} / ${h.netns}` : h.node))
  const ports = hops.map((h) => printable(`${h.in ?? '-'} → ${h.out ?? '-'}`))
  const num = String(hops.length).length
  const w1 = Math.max(...where.map((s) => s.length))
  const w2 = Math.max(...ports.map((s) => s.length))
  return hops
    .map((h, i) => {
      const action =
        h.action === 'drop' ? c.red.bold(h.action) : h.action === 'deliver' ? c.green(h.action) : c.bold(h.action)
      const outer = encapNote(h)
      const note = outer && printable(outer)
      const codes = h.findings?.length ? `  ${c.yellow(`[${h.findings.join(', ')}]`)}` : ''
      const head = `${indent}${String(i + 1).padStart(num)}  ${where[i]!.padEnd(w1)}  ${ports[i]!.padEnd(w2)}  ${action}${note ? `  ${c.cyan(note)}` : ''}${codes}`
      const pad = `${indent}${' '.repeat(num)}      `
      return [
        wrapLine(head, width, pad),
        ...h.evidence.map((e) => c.dim(wrapLine(`${pad}${printable(e)}`, width, `${pad}    `))),
      ].join('\n')
    })
    .join('\n')
}

function pathHeading(title: string, path: PathResult): string {
  const c = colors()
  return `${c.bold(title)}  ${dispositionColor(path.disposition)(path.disposition)}`
}

export function traceText(trace: Trace, width = terminalWidth()): string {
  const c = colors()
  const verdict = `${dispositionColor(trace.disposition)(trace.disposition)}  ${endpointLabel(trace.src)} → ${endpointLabel(trace.dst)}  ${packetLabel(trace.packet)}`
  const out = [wrapLine(verdict, width)]
  if (trace.disposition === 'UNDERLAY_DROP' && trace.probe) {
    const {lastSeen, firstMissing} = trace.probe
    out.push(
      wrapLine(
        `  ${DISPOSITION_GUIDE.UNDERLAY_DROP.summary}${lastSeen && firstMissing ? `: left ${printable(`${lastSeen.node} ${lastSeen.interface}`)}, never reached ${printable(`${firstMissing.node} ${firstMissing.interface}`)}` : ''}`,
        width,
      ),
    )
  } else if (trace.disposition !== 'DELIVERED') {
    const last = trace.hops.at(-1)
    out.push(
      wrapLine(
        `  ${DISPOSITION_GUIDE[trace.disposition].summary}${last ? ` (hop ${trace.hops.length}, ${printable(last.node)})` : ''}`,
        width,
      ),
    )
  } else if (trace.returnPath && trace.returnPath.disposition !== 'DELIVERED') {
    out.push(
      wrapLine(
        `  the reply is lost: ${trace.returnPath.disposition}, ${DISPOSITION_GUIDE[trace.returnPath.disposition].summary}`,
        width,
      ),
    )
  }
  for (const m of trace.missing ?? []) out.push(c.yellow(wrapLine(`  missing: ${printable(m)}`, width)))
  if (trace.service) out.push('', ...serviceText(trace, width))
  out.push(
    '',
    pathHeading(trace.service ? `Path${shownEndpoint(trace)}` : 'Path', trace),
    hopsText(trace.hops, '  ', width),
  )
  out.push('')
  if (trace.returnPath)
    out.push(pathHeading('Return path', trace.returnPath), hopsText(trace.returnPath.hops, '  ', width))
  else out.push(`${c.bold('Return path')}  ${c.dim('not walked: the packet did not arrive')}`)
  if (trace.probe) out.push('', probeText(trace.probe, width))
  out.push('', c.bold('Findings'), findingsText(trace.findings))
  if (trace.disposition !== 'DELIVERED') out.push('', c.dim(`(netctl explain ${trace.disposition})`))
  return out.join('\n')
}

const VERDICT_TEXT: Record<ProbeResult['verdict'], string> = {
  confirmed: 'confirmed',
  'underlay-drop': 'UNDERLAY_DROP',
  'model-disagrees': 'MODEL_DISAGREES',
  'not-sent': 'not sent',
}

/** --probe: the verdict, what was sent and answered, where the counters last saw the packet, and each counter's delta. */
export function probeText(probe: ProbeResult, width = terminalWidth()): string {
  const c = colors()
  const color = probe.verdict === 'confirmed' ? c.green.bold : probe.verdict === 'not-sent' ? c.yellow.bold : c.red.bold
  const where = (p: ProbePoint | null) => (p ? printable(`${p.node} ${p.interface} ${p.direction}`) : '-')
  const lines = [`${c.bold('Probe')}  ${color(VERDICT_TEXT[probe.verdict])}`]
  if (probe.note) lines.push(wrapLine(`  ${printable(probe.note)}`, width, '    '))
  lines.push(
    wrapLine(`  sent ${probe.sent}, answered ${probe.answered ?? '-'}: ${printable(probe.command)}`, width, '    '),
  )
  if (probe.sent > 0) lines.push(`  last seen: ${where(probe.lastSeen)}   first missing: ${where(probe.firstMissing)}`)
  for (const k of probe.counters)
    lines.push(
      c.dim(
        `    ${k.path.padEnd(7)} ${printable(`${k.node} ${k.interface}`)} ${k.direction}  +${k.packets} packets  +${k.dropped} dropped${k.ipv6Multicast ? `  (+${k.ipv6Multicast} IPv6 multicast left out)` : ''}`,
      ),
    )
  // the drop rules whose counters moved; the accepting ones count every packet of the node (--json lists them all)
  const moved = (probe.rules ?? []).filter((r) => r.drops && r.packets > 0)
  if (probe.rules && probe.rules.length > 0)
    lines.push(
      `  rules read: ${probe.rules.length} (${probe.rules.filter((r) => r.used).length} the walk used, ${probe.rules.filter((r) => r.drops).length} drop rules); drop rules that counted packets: ${moved.length === 0 ? 'none' : moved.length}`,
    )
  for (const r of moved)
    lines.push(
      wrapLine(
        `    ${r.drops ? c.red(`+${r.packets}`) : `+${r.packets}`} ${printable(`${r.node} ${r.ruleset} ${r.table}: ${r.rule}`)}`,
        width,
        '      ',
      ),
    )
  for (const ct of probe.conntrack ?? [])
    for (const e of ct.entries)
      lines.push(wrapLine(c.dim(`  conntrack ${printable(`${ct.node}: ${e}`)}`), width, '    '))
  if (probe.smaller)
    lines.push(
      `  the same ping at ${probe.smaller.size} bytes: ${probe.smaller.answered} of ${probe.smaller.sent} answered`,
    )
  return lines.join('\n')
}

/** " (to endpoint 172.20.2.2)": which endpoint's walk the Path section shows. */
function shownEndpoint(trace: Trace): string {
  const to = trace.translation?.after.split(' → ')[1]
  return to ? printable(` (to endpoint ${to})`) : ''
}

/**
 * A Service DST, compactly: the Service and port, the translation (rule and
 * agent), then one line per endpoint with its share and its verdict both ways.
 */
function serviceText(trace: Trace, width?: number): string[] {
  const c = colors()
  const svc = trace.service!
  const port = svc.port
  const via =
    svc.via === 'nodePort'
      ? `NodePort ${port.nodePort} on ${svc.node ?? trace.dst.ip}`
      : svc.via === 'externalIP'
        ? `external IP ${trace.dst.ip}:${port.port}`
        : svc.via === 'loadBalancerIP'
          ? `load-balancer IP ${trace.dst.ip}:${port.port}`
          : `ClusterIP ${svc.clusterIP}:${port.port}`
  const head = `${c.bold('Service')}  ${svc.namespace}/${svc.name} ${via} ${port.name ? `(${port.name}) ` : ''}${port.protocol}${port.targetPort !== undefined ? ` → targetPort ${port.targetPort}` : ''}${svc.internalTrafficPolicy ? ', internalTrafficPolicy Local' : ''}${svc.externalTrafficPolicy ? ', externalTrafficPolicy Local' : ''}${svc.sessionAffinity ? `, session affinity ClientIP ${svc.sessionAffinity.clientIP.timeoutSeconds} s` : ''}${svc.trafficDistribution ? `, trafficDistribution ${svc.trafficDistribution}` : ''}`
  const out = [wrapLine(printable(head), width)]
  const t = trace.translation
  if (t)
    out.push(
      wrapLine(
        printable(
          `  translated on ${t.node} at ${t.hook} by ${t.agent}: ${t.before} → ${t.after.split(' → ')[1] ?? t.after}`,
        ),
        width,
        '    ',
      ),
      c.dim(wrapLine(printable(`    ${t.rule}`), width, '      ')),
    )
  else out.push(c.yellow('  not translated: no rule sent the request to an endpoint'))
  const reached = `${svc.reached} of ${svc.total} endpoint${svc.total === 1 ? '' : 's'} reached`
  out.push(`  ${svc.total > 0 && svc.reached === svc.total ? c.green(reached) : c.red(reached)}`)
  const eps = trace.endpoints ?? []
  const who = eps.map((e) =>
    printable(
      `${e.ip}${e.port !== undefined ? `:${e.port}` : ''}${e.pod ? ` ${e.namespace && e.namespace !== 'default' ? `${e.namespace}/` : ''}${e.pod}` : ''}${e.node ? ` on ${e.node}` : ''}`,
    ),
  )
  const w = Math.max(0, ...who.map((x) => x.length))
  eps.forEach((e, i) => {
    const share = `${(Math.round(e.probability * 10000) / 100).toString().padStart(6)}%`
    let verdict: string
    if (e.disposition === undefined) verdict = c.dim(printable(e.note ?? 'not walked'))
    else if (e.disposition === 'DELIVERED' && e.returnDisposition === 'DELIVERED')
      verdict = c.green('DELIVERED, reply DELIVERED')
    else if (e.disposition === 'DELIVERED')
      verdict = `${c.green('DELIVERED')}, reply ${dispositionColor(e.returnDisposition ?? 'INSUFFICIENT_INFO')(e.returnDisposition ?? 'not walked')}`
    else
      verdict = `${dispositionColor(e.disposition)(e.disposition)}${e.hops?.at(-1) ? ` at ${printable(e.hops.at(-1)!.node)}` : ''}`
    // a walked way's note says what it is (a way no DNAT takes); otherwise how the EndpointSlices list it
    const flags = [
      e.disposition !== undefined && e.note
        ? e.note
        : e.inEndpointSlice
          ? e.ready
            ? ''
            : 'not ready'
          : 'not in the EndpointSlices',
    ]
      .filter(Boolean)
      .map((x) => printable(x))
    out.push(
      wrapLine(
        `  ${share}  ${who[i]!.padEnd(w)}  ${verdict}${flags.length ? c.yellow(`  (${flags.join(', ')})`) : ''}${e.findings?.length ? `  ${c.yellow(`[${e.findings.join(', ')}]`)}` : ''}`,
        width,
        '      ',
      ),
    )
  })
  return out
}

/** The last line under the live display: how much of the cluster the trace needed. */
export function traceCollectFooter(snapshot: Snapshot, rounds: string[][]): string {
  // a node probed again for more of its pods counts once
  const probed = new Set(rounds.flat()).size
  const got = Object.keys(snapshot.nodeStates).length
  const ms = Date.parse(snapshot.finishedAt) - Date.parse(snapshot.startedAt)
  const parts = [
    `collected ${got}/${probed} node${probed === 1 ? '' : 's'} on the path (of ${snapshot.nodes.length}) in ${(ms / 1000).toFixed(1)}s`,
  ]
  const unreachable = snapshot.errors.filter((e) => e.code === 'NODE_UNREACHABLE').length
  const partial = snapshot.errors.filter((e) => e.code === 'COLLECTION_PARTIAL').length
  if (partial > 0) parts.push(`${partial} partial`)
  if (unreachable > 0) parts.push(`${unreachable} unreachable`)
  return parts.join(', ')
}

/**
 * --debug: which nodes a live trace probed, round by round ("[node1 node3] [node2]"), and the pods
 * whose namespaces it read on each collected node (a live trace reads only the pods it needs).
 */
export function traceRoundsLine(rounds: string[][], snapshot: Snapshot): string {
  const probed = new Set(rounds.flat()).size
  const pods = Object.entries(snapshot.nodeStates).map(
    ([node, state]) =>
      `${printable(node)} ${state.pods.length === 0 ? '-' : state.pods.map((p) => printable(`${p.namespace}/${p.name}`)).join(' ')}`,
  )
  return `debug: trace collected ${rounds.map((r) => `[${r.map((n) => printable(n)).join(' ')}]`).join(' ')} (${probed} of ${snapshot.nodes.length} nodes)${pods.length > 0 ? `; pods read: ${pods.join(', ')}` : ''}`
}
