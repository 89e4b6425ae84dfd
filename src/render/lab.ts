import type {LabAgentsView} from '../lab/agents/index.js'
import type {LabListEntry} from '../lab/list.js'
import type {LabPolicyResult} from '../lab/policy.js'
import type {LabStatus, LabView} from '../lab/status.js'
import type {TeardownResult} from '../lab/teardown.js'
import type {LabUpResult} from '../lab/up-result.js'
import {colors, table} from './color.js'

/** One line: which agents' rules the nodes carry. */
function agentsText(a: LabAgentsView): string {
  return `rule sets: ${a.ruleSets.length ? a.ruleSets.join(', ') : 'none (empty firewalls: --proxy-mode none, --host-profile plain)'}`
}

function warningsText(warnings: string[]): string[] {
  const c = colors()
  return warnings.map((w) => c.yellow(`warning: ${w}`))
}

/** A step of `lab up` as it starts, on stderr. */
export function labUpProgressLine(step: string): void {
  process.stderr.write(`  ${step}...\n`)
}

export function labUpText(r: LabUpResult): string {
  const c = colors()
  const out = [
    `${c.green('lab up')}: ${c.bold(r.name)} — ${r.nodes.length} nodes, ${r.pods.length} pods, ${r.backend} on a ${r.topology} underlay`,
    '',
    table(
      ['NODE', 'NETNS', 'INTERNAL-IP', 'POD-CIDR'],
      r.nodes.map((n) => [n.name + (n.routeReflector ? ' (rr)' : ''), n.netns, n.ip, n.podCIDR]),
    ),
    '',
    table(
      ['POD', 'NODE', 'NETNS', 'IP'],
      r.pods.map((p) => [p.name, p.node, p.netns, p.ip]),
    ),
    '',
    agentsText(r.agents),
    ...(r.services
      ? r.services.map(
          (svc) =>
            `service:   ${svc.namespace}/${svc.name} ${svc.clusterIP} ${svc.ports.map((p) => `${p.port}/${p.protocol}${p.nodePort ? ` nodePort ${p.nodePort}` : ''}`).join(' ')} → ${svc.endpoints.length} endpoint(s)`,
        )
      : []),
    '',
    ...warningsText(r.warnings),
    ...(r.notes ?? []).map((n) => `note: ${n}`),
    ...(r.warnings.length || r.notes?.length ? [''] : []),
    `inventory: ${r.inventory}`,
    ...(r.ssh ? [`ssh:       ssh -F ${r.ssh.config} ${r.nodes[0]!.name}`] : []),
    `try:       ip netns exec ${r.pods[0]?.netns ?? r.nodes[0]!.netns} ping -c1 ${r.pods.at(-1)?.ip ?? r.nodes.at(-1)!.ip}`,
    `           netctl lab status --name ${r.name}`,
    `remove:    netctl lab down --name ${r.name}`,
  ]
  return out.join('\n')
}

/** `lab down --all` on a machine without labs. */
export const NO_LABS_TO_REMOVE = 'no labs to remove'

export function labDownText(r: TeardownResult): string {
  if (r.namespaces.length === 0 && !r.stateDir) return `lab ${r.name}: nothing to remove`
  return `lab ${r.name} removed: ${r.namespaces.length} namespaces, ${r.processes.length} processes${r.stateDir ? `, ${r.stateDir}` : ''}`
}

export function labListText(labs: LabListEntry[]): string {
  if (labs.length === 0) return 'no labs (create one with: netctl lab up)'
  const rows = table(
    ['NAME', 'BACKEND', 'TOPOLOGY', 'NODES', 'PODS', 'STATUS', 'NAMESPACES', 'CREATED'],
    labs.map((l) => [
      l.name,
      l.backend ?? '-',
      l.topology ?? '-',
      String(l.nodes ?? '-'),
      String(l.pods ?? '-'),
      l.status,
      String(l.namespaces),
      l.createdAt ?? '-',
    ]),
  )
  const reasons = labs
    .filter((l) => l.reason && l.status !== 'up' && l.status !== 'creating')
    .map((l) => `${l.name}: ${l.status}: ${l.reason}`)
  return reasons.length ? [rows, '', ...reasons].join('\n') : rows
}

export function labViewText(v: LabView): string[] {
  const c = colors()
  const foreign = new Set(v.foreign)
  const mark = (netns: string, present: boolean): string =>
    present ? c.green('present') : foreign.has(netns) ? c.red("NOT THE LAB'S") : c.red('MISSING')
  const state = v.status === 'up' ? c.green(v.status) : c.red(v.status)
  return [
    `lab ${c.bold(v.name)}: ${v.backend} on a ${v.topology} underlay, ${state}${v.reason ? ` (${v.reason})` : ''}, created ${v.createdAt}`,
    '',
    table(
      ['NODE', 'INTERNAL-IP', 'POD-CIDR', 'NETNS'],
      v.nodes.map((n) => [
        n.name + (n.routeReflector ? ' (rr)' : ''),
        n.ip,
        n.podCIDR,
        `${n.netns} ${mark(n.netns, n.present)}`,
      ]),
    ),
    '',
    table(
      ['POD', 'NODE', 'IP', 'NETNS'],
      v.pods.map((p) => [p.name, p.node, p.ip, `${p.netns} ${mark(p.netns, p.present)}`]),
    ),
  ]
}

export function labStatusText(s: LabStatus): string {
  const c = colors()
  const out = labViewText(s)
  out.push('', agentsText(s.agents))
  if (s.bgp) {
    const est = s.bgp.filter((b) => b.state === 'Established').length
    out.push('', `BGP sessions: ${est}/${s.bgp.length} Established`)
    out.push(
      table(
        ['NODE', 'PEER', 'PEER-IP', 'STATE', 'INFO'],
        s.bgp.map((b) => [b.node, b.peer, b.peerIP ?? '-', b.state, b.info ?? '']),
      ),
    )
  }
  if (s.reachability) {
    const r = s.reachability
    const verdict =
      r.ok === r.pairs
        ? c.green(`all ${r.pairs} pod pairs reachable`)
        : c.red(`${r.pairs - r.ok} of ${r.pairs} pod pairs UNREACHABLE`)
    out.push('', `reachability (ping): ${verdict}`)
    for (const f of r.failed.slice(0, 20)) out.push(`  ${f.from} -> ${f.to} (${f.toIP}) ${c.red('no reply')}`)
    if (r.failed.length > 20) out.push(`  ... and ${r.failed.length - 20} more`)
  }
  if (s.warnings.length) out.push('', ...warningsText(s.warnings))
  return out.join('\n')
}

/** `lab policy apply | delete | list`, as text: what changed, then the lab's policies. */
export function labPolicyText(r: LabPolicyResult): string {
  const lines: string[] = []
  for (const a of r.applied ?? []) lines.push(`networkpolicy ${a.namespace}/${a.name} ${a.result}`)
  for (const d of r.deleted ?? []) lines.push(`networkpolicy ${d.namespace}/${d.name} deleted`)
  if (lines.length > 0) lines.push('')
  if (r.policies.length === 0) lines.push(`lab ${r.lab} has no NetworkPolicy`)
  else
    lines.push(
      table(
        ['NAMESPACE', 'NAME', 'POD-SELECTOR', 'POLICY-TYPES'],
        r.policies.map((p) => [
          p.namespace,
          p.name,
          JSON.stringify(p.podSelector),
          p.policyTypes.join(',') || '(defaulted)',
        ]),
      ),
    )
  lines.push(
    r.enforced
      ? `lab ${r.lab} runs Felix (Calico or Canal), which enforces NetworkPolicies: trace and check judge them (with agent rules, --proxy-mode iptables|nftables, the lab programs them into Felix's cali-pi-/cali-po- chains on every node)`
      : `lab ${r.lab} runs flannel, which enforces no NetworkPolicy: they are recorded, and unenforced as on a real flannel cluster`,
  )
  return lines.join('\n')
}
