/**
 * A trace as a picture: Mermaid (`-o mermaid`, pastes into Markdown on GitHub
 * or GitLab) and Graphviz DOT (`-o dot`, `| dot -Tsvg`). One box per hop, in
 * order, edges labelled with the device the packet leaves by and the
 * encapsulation it carries; the hop where it is dropped stands out. The
 * forward path and the reply are two groups. Ids are generated (f1, r1, ...),
 * so names from the cluster only ever appear inside quoted, escaped labels.
 */
import type {Hop, PathResult, Trace} from '../model/trace.js'
import {endpointLabel, packetLabel} from './trace.js'

interface GraphNode {
  id: string
  lines: string[]
  kind: 'drop' | 'deliver' | 'hop'
}

interface GraphEdge {
  from: string
  to: string
  label: string
}

interface Group {
  id: string
  title: string
  nodes: GraphNode[]
  edges: GraphEdge[]
}

/** What the packet leaves a hop through: "flannel.1", "eth0 · vxlan VNI 1 → 172.31.0.13:8472". */
function edgeLabel(hop: Hop): string {
  const outer = hop.packet?.encap.at(-1)
  const dev = hop.out ?? ''
  if (!outer || !['encap', 'underlay', 'udp-forward'].includes(hop.action)) return dev
  const vni = outer.vni === undefined ? '' : ` VNI ${outer.vni}`
  const port = outer.port === undefined ? '' : `:${outer.port}`
  return `${dev ? `${dev} · ` : ''}${outer.type}${vni} → ${outer.outerDst}${port}`
}

function group(id: string, prefix: string, title: string, path: PathResult): Group {
  const nodes = path.hops.map((h, i): GraphNode => ({
    id: `${prefix}${i + 1}`,
    lines: [
      `${i + 1}. ${h.netns && h.netns !== h.node ? `${h.node} / ${h.netns}` : h.node}`,
      `${h.in ?? '-'} → ${h.out ?? '-'}  ${h.action}`,
    ],
    kind: h.action === 'drop' ? 'drop' : h.action === 'deliver' ? 'deliver' : 'hop',
  }))
  // the last hop of a path that was not delivered is where the packet died, whatever its action
  const last = nodes.at(-1)
  if (last && path.disposition !== 'DELIVERED') last.kind = 'drop'
  const edges = path.hops
    .slice(1)
    .map((_, i): GraphEdge => ({from: nodes[i]!.id, to: nodes[i + 1]!.id, label: edgeLabel(path.hops[i]!)}))
  return {id, title: `${title}: ${path.disposition}`, nodes, edges}
}

function groups(trace: Trace): Group[] {
  const out = [
    group(
      'forward',
      'f',
      `${endpointLabel(trace.src)} → ${endpointLabel(trace.dst)}, ${packetLabel(trace.packet)}`,
      trace,
    ),
  ]
  if (trace.returnPath) out.push(group('reply', 'r', 'reply', trace.returnPath))
  return out
}

/** Text inside a Mermaid "quoted label": entity codes for what the parser or the HTML label would take. */
export function mermaidText(s: string): string {
  return s
    .replace(/#/g, '#35;')
    .replace(/"/g, '#quot;')
    .replace(/</g, '#lt;')
    .replace(/>/g, '#gt;')
    .replace(/\|/g, '#124;')
    .replace(/[\r\n]+/g, ' ')
}

export function traceMermaid(trace: Trace): string {
  const out = ['flowchart LR']
  const all = groups(trace)
  for (const g of all) {
    out.push(`  subgraph ${g.id}["${mermaidText(g.title)}"]`, '    direction LR')
    for (const n of g.nodes) out.push(`    ${n.id}["${n.lines.map(mermaidText).join('<br/>')}"]`)
    for (const e of g.edges)
      out.push(e.label ? `    ${e.from} -->|"${mermaidText(e.label)}"| ${e.to}` : `    ${e.from} --> ${e.to}`)
    out.push('  end')
  }
  out.push('  classDef drop fill:#fdd,stroke:#c00,stroke-width:3px', '  classDef deliver fill:#dfd,stroke:#080')
  for (const kind of ['drop', 'deliver'] as const) {
    const ids = all.flatMap((g) => g.nodes.filter((n) => n.kind === kind).map((n) => n.id))
    if (ids.length) out.push(`  class ${ids.join(',')} ${kind}`)
  }
  return out.join('\n')
}

/** The inside of a DOT double-quoted string. */
function dotInner(s: string): string {
  return s
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/[\r\n]+/g, ' ')
}

/** A DOT double-quoted string; `lines` joined by DOT's own line break (the two characters \n). */
export function dotString(...lines: string[]): string {
  return `"${lines.map(dotInner).join('\\n')}"`
}

export function traceDot(trace: Trace): string {
  const out = [
    'digraph trace {',
    '  rankdir=LR;',
    `  label=${dotString(`${trace.disposition}  ${endpointLabel(trace.src)} → ${endpointLabel(trace.dst)}`)};`,
    '  labelloc=t;',
    '  node [shape=box, style="rounded", fontname="monospace"];',
    '  edge [fontname="monospace", fontsize=10];',
  ]
  const style = {
    drop: ' color="#cc0000", penwidth=3, style="rounded,filled", fillcolor="#ffdddd"',
    deliver: ' color="#008800", style="rounded,filled", fillcolor="#ddffdd"',
    hop: '',
  }
  for (const g of groups(trace)) {
    out.push(`  subgraph cluster_${g.id} {`, `    label=${dotString(g.title)};`)
    for (const n of g.nodes)
      out.push(`    ${n.id} [label=${dotString(...n.lines)}${style[n.kind] ? `,${style[n.kind]}` : ''}];`)
    for (const e of g.edges) out.push(`    ${e.from} -> ${e.to}${e.label ? ` [label=${dotString(e.label)}]` : ''};`)
    out.push('  }')
  }
  out.push('}')
  return out.join('\n')
}
