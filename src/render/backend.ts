import {createInterface} from 'node:readline/promises'

import type {BackendView} from '../backend/plan/drift.js'
import {describeKubeChange, type KubeChange} from '../backend/plan/kube-objects.js'
import type {NodeOps} from '../backend/plan/ops.js'
import type {BackendPlan} from '../backend/plan/plan.js'
import type {Preflight} from '../backend/plan/preflight.js'
import type {Kind} from '../backend/plan/types.js'
import type {WhatIf} from '../backend/plan/what-if.js'
import {breakLine} from '../backend/plan/what-if-summary.js'
import type {PlannedSwitch} from '../backend/service.js'
import type {SetResult} from '../backend/set.js'
import {colors, printable, table} from './color.js'
import {findingText} from './finding.js'
import {matrixDiffText} from './matrix.js'

/** How each kind of kernel state is listed, by the command that prints it. */
const KIND_TITLE: Record<Kind, string> = {
  links: 'ip -d link',
  addresses: 'ip addr',
  routes: 'ip route',
  neighbours: 'ip neigh',
  fdb: 'bridge fdb',
}
const ORDER: Kind[] = ['links', 'addresses', 'routes', 'neighbours', 'fdb']

// ---------------------------------------------------------------- JSON faces

export function backendGetJson(v: BackendView): object {
  return v
}

export function planJson(p: PlannedSwitch, whatIf?: WhatIf): object {
  const {plan, preflight} = p
  return {
    cluster: plan.cluster,
    from: plan.from,
    to: plan.to,
    noop: plan.noop,
    ...(p.kubeChange ? {objects: describeKubeChange(p.kubeChange)} : {}),
    preflight,
    mtu: plan.mtu,
    nodes: plan.nodes.map((n) => ({
      node: n.node,
      collected: n.collected,
      changes: n.changes,
      ...(n.lines ? {diff: n.lines} : {}),
      daemons: n.daemons,
      ...(n.ops ? {commands: commandsOf(n.ops)} : {}),
    })),
    ...(whatIf ? {whatIf} : {}),
  }
}

/** --what-if: the routes the kernel would refuse, then the pairs whose reachability the switch changes. */
export function whatIfText(w: WhatIf, to: string): string {
  const out = [`what if ${to}: the plan applied to the snapshot (no node touched)`]
  if (w.refused.length) {
    out.push('', 'the kernel would refuse:')
    for (const r of w.refused) out.push(printable(`  ${r.node}: ${r.route}: ${r.why}`))
  }
  out.push('', matrixDiffText(w.matrix))
  if (w.mtu.broken.length > 0) {
    out.push('', `full-size packets (each source pod's MTU, DF set) that would die: ${w.mtu.broken.length} pair(s)`)
    for (const f of w.mtu.findings) out.push(findingText(f))
  }
  return out.join('\n')
}

function commandsOf(o: NodeOps): object {
  return {
    stop: o.stop,
    addIp: o.addIp,
    addBridge: o.addBridge,
    start: o.start,
    reconfigure: o.reconfigure,
    removeBridge: o.removeBridge,
    removeIp: o.removeIp,
  }
}

export function setJson(r: SetResult): object {
  return {
    outcome: r.outcome,
    message: r.message,
    plan: planJson(r, r.whatIf),
    ...(r.forced ? {forced: true} : {}),
    ...(r.apply ? {apply: r.apply} : {}),
    ...(r.verify ? {verify: verifyJson(r.verify)} : {}),
    ...(r.rollback
      ? {rollback: {restored: r.rollback.restored, nodes: r.rollback.nodes, verify: verifyJson(r.rollback.verify)}}
      : {}),
    ...(r.files ? {files: r.files} : {}),
    ...(r.objects ? {objects: r.objects} : {}),
  }
}

function verifyJson(v: NonNullable<SetResult['verify']>): object {
  const {snapshot: _snapshot, ...rest} = v
  return rest
}

// ---------------------------------------------------------------- text faces

export function planText(plan: BackendPlan, preflight: Preflight, change?: KubeChange): string {
  const c = colors()
  const out: string[] = [
    `${c.bold('backend plan')}: ${plan.from} -> ${plan.to} on ${plan.cluster.source} ${c.bold(plan.cluster.name)} (${plan.nodes.length} nodes)`,
  ]
  if (plan.noop) out.push('', `already ${plan.to}: every node holds its state, nothing to change`)
  if (change && !plan.noop) {
    out.push(
      '',
      `${c.bold('objects')} (${change.family === 'flannel' ? 'flanneld programs the nodes when it restarts; netctl then removes what the old backend left' : 'Felix and BIRD follow the pools; netctl then removes what the old backend left'}):`,
    )
    for (const line of describeKubeChange(change)) out.push(`  ${line}`)
  }
  for (const n of plan.noop ? [] : plan.nodes) {
    out.push(
      '',
      `${c.bold(n.node)}  ${n.collected ? `${n.changes} change(s)` : c.red('not collected: nothing known, nothing planned')}`,
    )
    for (const kind of ORDER) {
      const l = n.lines?.[kind]
      if (!l || l.add.length + l.remove.length === 0) continue
      out.push(`  ${KIND_TITLE[kind]}`)
      for (const line of l.remove) out.push(c.red(`    - ${line}`))
      for (const line of l.add) out.push(c.green(`    + ${line}`))
    }
    const d = n.daemons
    const words = [
      ...d.stop.map((x) => `stop ${x}`),
      ...d.start.map((x) => `start ${x}`),
      ...d.reconfigure.map((x) => `reconfigure ${x} for ${plan.to}`),
    ]
    if (words.length > 0) out.push(`  daemons: ${words.join(', ')}`)
  }
  const m = plan.mtu
  const side = (s: {backend: string; tunnel?: number; pod: number}): string =>
    `${s.backend} (pods ${s.pod}${s.tunnel ? `, tunnel ${s.tunnel}` : ''})`
  out.push('', `MTU: underlay ${m.underlay}; ${side(m.from)} -> ${side(m.to)}`)
  for (const note of m.notes) out.push(`  ${note}`)
  out.push('', preflightText(preflight))
  return out.join('\n')
}

export function preflightText(p: Preflight): string {
  const c = colors()
  const out = [`preflight: ${p.ok ? c.green('ok') : c.red('REFUSED')}`]
  for (const check of p.checks)
    out.push(`  ${check.ok ? c.green('ok  ') : c.red('FAIL')} ${check.name}: ${check.message}`)
  for (const f of p.findings) {
    out.push(`  ${f.severity === 'error' ? c.red(f.code) : c.yellow(f.code)}: ${f.message}`)
    for (const e of f.evidence.slice(0, 12)) out.push(`      ${e}`)
    if (f.evidence.length > 12) out.push(`      ... and ${f.evidence.length - 12} more`)
    // the catalogue's convention: `#` lines explain, the others are commands to run
    if (f.fix)
      out.push('    fix:', ...f.fix.split('\n').map((l) => (l.startsWith('#') ? `      ${l}` : `      $ ${l}`)))
  }
  return out.join('\n')
}

export function setText(r: SetResult, opts: {plan?: boolean} = {}): string {
  const c = colors()
  const out: string[] = []
  if (r.outcome !== 'noop' && opts.plan !== false) out.push(planText(r.plan, r.preflight, r.kubeChange), '')
  // a refusal or a forced switch shows what the what-if predicted
  if (r.whatIf && (r.outcome === 'refused' || r.forced) && breakLine(r.whatIf))
    out.push(whatIfText(r.whatIf, r.plan.to), '')
  if (r.verify?.reachability) {
    const re = r.verify.reachability
    if (re.pairs > 0)
      out.push(
        `reachability (ping): ${re.ok === re.pairs ? c.green(`all ${re.pairs} pod pairs reachable`) : c.red(`${re.pairs - re.ok} of ${re.pairs} pod pairs UNREACHABLE`)}`,
      )
  }
  if (r.verify?.reachabilityNote) out.push(`note: ${r.verify.reachabilityNote}`)
  if (r.rollback) {
    const re = r.rollback.verify.reachability
    if (re)
      out.push(
        `after rollback, reachability (ping): ${re.ok === re.pairs ? c.green(`all ${re.pairs} pod pairs reachable`) : c.red(`${re.pairs - re.ok} of ${re.pairs} UNREACHABLE`)}`,
      )
    for (const n of r.rollback.nodes.filter((x) => !x.ok)) out.push(c.red(`  rollback on ${n.node}: ${n.error}`))
  }
  const files = r.files ?? []
  if (files.length > 0)
    out.push(
      `updated: ${files.slice(0, 2).join(', ')}${files.length > 2 ? ` and ${files.length - 2} node file(s) (node facts, ${r.plan.to.startsWith('flannel') ? 'subnet.env, ' : ''}CNI config)` : ''}`,
    )
  if (r.outcome === 'applied' && r.objects) out.push(`changed: ${r.objects.join('; ')}`)
  // a failure's one line goes to stderr, from the command
  if (r.outcome === 'applied' || r.outcome === 'noop' || r.outcome === 'dry-run') out.push(c.green(r.message))
  return out.join('\n')
}

export function backendGetText(v: BackendView): string {
  const c = colors()
  const out: string[] = [
    `backend of ${v.cluster.source} ${c.bold(v.cluster.name)}: configured ${c.bold(v.cluster.configured)}`,
    '',
  ]
  out.push(
    table(
      ['NODE', 'PROGRAMMED', 'DAEMONS', 'DRIFT'],
      v.nodes.map((n) => {
        const drift = Object.values(n.drift.missing).flat().length + Object.values(n.drift.unexpected).flat().length
        return [
          n.node,
          n.collected ? n.programmed.join(', ') || '-' : 'not collected',
          n.daemons.join(', ') || '-',
          n.collected ? (drift === 0 ? 'none' : `${drift} line(s)`) : '?',
        ]
      }),
    ),
  )
  for (const n of v.nodes.filter((x) => x.collected)) {
    out.push('', c.bold(n.node))
    for (const p of n.peers) out.push(`  to ${p.peer} (${p.podCIDR}): ${p.route ?? 'no route'}`)
    for (const kind of ORDER) {
      if (kind === 'routes' || n.state[kind].length === 0) continue
      out.push(`  ${KIND_TITLE[kind]}`, ...n.state[kind].map((l) => `    ${l}`))
    }
    for (const kind of ORDER) {
      for (const l of n.drift.unexpected[kind]) out.push(c.red(`  drift: ${l} (not ${v.cluster.configured}'s)`))
      for (const l of n.drift.missing[kind]) out.push(c.red(`  drift: missing ${l}`))
    }
  }
  out.push('')
  for (const e of v.errors) out.push(c.red(`${e.code}: ${e.node}: ${e.message}`))
  if (v.drift.length === 0) out.push(c.green(`no drift: every collected node holds ${v.cluster.configured}'s state`))
  for (const d of v.drift) out.push(c.red(`drift: ${d}`))
  return out.join('\n')
}

/** Ask on the terminal (stderr, so stdout stays the plan); anything but y/yes declines. */
export async function askConfirm(question: string): Promise<boolean> {
  const rl = createInterface({input: process.stdin, output: process.stderr})
  try {
    const answer = await rl.question(`${question} [y/N] `)
    return /^y(es)?$/i.test(answer.trim())
  } finally {
    rl.close()
  }
}

/** Progress of a switch, on stderr: stdout stays the plan and the result. */
export function progressLine(line: string): void {
  process.stderr.write(`${colors(process.stderr).dim(line)}\n`)
}
