import {type FindingInput, makeFinding} from '../../analyze/catalogue/index.js'
import {cidrContainsAddress} from '../../analyze/ip.js'
import {BACKEND_SWITCH_CODES, type Finding, type FindingCode} from '../../model/finding.js'
import type {Snapshot} from '../../model/snapshot.js'
import type {BackendPlan} from './plan.js'
import {KIND_MODULE, type NodeProbeAnswer} from './preflight-probe.js'
import {backendInfo} from './profiles.js'
import type {ClusterFacts, Daemon} from './types.js'

/**
 * Whether a switch may go ahead: every node collected and answering, the
 * same CNI family, a kernel that can make the new devices, daemons netctl can
 * run, and — for backends whose next hop is the peer node itself — every node
 * pair L2-adjacent. Pure: the answers come in from the nodes.
 */

/**
 * Every code a preflight finding can carry: catalogue codes, built with
 * makeFinding so title and fix come from `netctl explain`. Most are the
 * backend-switch group (about the switch, not the dataplane).
 */
export const PREFLIGHT_CODES = [
  'NODE_UNREACHABLE',
  'COLLECTION_PARTIAL',
  ...BACKEND_SWITCH_CODES,
  'HOSTGW_NOT_L2_ADJACENT',
] as const satisfies readonly FindingCode[]
export type PreflightCode = (typeof PREFLIGHT_CODES)[number]

/** Only the codes above, so a new refusal cannot skip the list (and its test). */
const refusal = (code: PreflightCode, input: FindingInput): Finding => makeFinding(code, {severity: 'error', ...input})

export interface PreflightCheck {
  name: 'collection' | 'family' | 'kernel' | 'daemons' | 'l2-adjacency'
  ok: boolean
  message: string
}

export interface Preflight {
  ok: boolean
  checks: PreflightCheck[]
  findings: Finding[]
  /** node pairs that are not L2-adjacent, as "node1-node3" */
  notAdjacent: string[]
}

export const DAEMON_TOOLS: Record<Daemon, string[]> = {bird: ['bird', 'birdc'], 'flannel-udp': ['socat']}

export interface PreflightInput {
  plan: BackendPlan
  snapshot: Snapshot
  facts: ClusterFacts
  /** netctl runs the backend daemons itself (a lab) */
  managesDaemons: boolean
  answers: Record<string, NodeProbeAnswer | string>
  /** why this cluster cannot run the backend at all (e.g. the lab has no module for it) */
  cannotRun?: string
}

const names = (xs: string[], max = 8): string =>
  `${xs.slice(0, max).join(', ')}${xs.length > max ? `, ... (${xs.length - max} more)` : ''}`

export function evaluatePreflight(input: PreflightInput): Preflight {
  const {plan, snapshot, facts, answers} = input
  const findings: Finding[] = []
  const checks: PreflightCheck[] = []
  const to = backendInfo(plan.to)
  const from = backendInfo(plan.from)

  // 1. every node collected, whole, and answering the preflight questions
  const before = findings.length
  for (const e of snapshot.errors) {
    findings.push(
      refusal(e.code, {
        node: e.node,
        subject: e.node,
        message: `${e.node}: ${e.message}`,
        evidence: [],
        vars: {node: e.node},
      }),
    )
  }
  for (const n of facts.nodes) {
    const a = answers[n.name]
    if (typeof a === 'string' && !snapshot.errors.some((e) => e.node === n.name)) {
      findings.push(
        refusal('NODE_UNREACHABLE', {node: n.name, subject: n.name, message: a, evidence: [], vars: {node: n.name}}),
      )
    }
  }
  const bad = findings.length - before
  checks.push({
    name: 'collection',
    ok: bad === 0,
    message:
      bad === 0
        ? `all ${facts.nodes.length} nodes collected and answering`
        : `${bad} node(s) unreachable or collected in part: a switch needs every node`,
  })

  // 2. the overlay changes within one CNI; another CNI means new pods
  const sameFamily = from.family === to.family
  if (!sameFamily) {
    findings.push(
      refusal('BACKEND_FAMILY_CHANGE', {
        subject: `${plan.from} -> ${plan.to}`,
        message: `${plan.from} -> ${plan.to} changes the CNI plugin (${from.family} -> ${to.family}: pod plumbing and pod address blocks differ), which recreates every pod; netctl switches the overlay within one CNI`,
        evidence: [],
        vars: {family: from.family, newFamily: to.family},
      }),
    )
  }
  checks.push({
    name: 'family',
    ok: sameFamily,
    message: sameFamily
      ? `${to.family} -> ${to.family}: pods keep their interfaces`
      : `${from.family} -> ${to.family}: a different CNI`,
  })

  // 3. the kernel can make the devices
  const missing = new Map<string, string[]>()
  for (const kind of to.linkKinds) {
    for (const n of facts.nodes) {
      const a = answers[n.name]
      if (typeof a !== 'string' && a?.kinds[kind] === 'no') missing.set(kind, [...(missing.get(kind) ?? []), n.name])
    }
  }
  for (const [kind, nodes] of missing) {
    findings.push(
      refusal('KERNEL_MODULE_MISSING', {
        subject: kind,
        message: `${plan.to} needs the kernel's ${kind} link type, and ${names(nodes)} ${nodes.length === 1 ? 'has' : 'have'} no ${KIND_MODULE[kind]} module (not built in, not loaded, no module file): it can be planned, not applied here`,
        evidence: nodes.map((n) => `${n}: no /sys/module/${KIND_MODULE[kind]}, not in modules.builtin or modules.dep`),
        vars: {module: KIND_MODULE[kind]},
      }),
    )
  }
  if (missing.size === 0 && input.cannotRun) {
    findings.push(refusal('BACKEND_UNSUPPORTED', {subject: plan.to, message: input.cannotRun, evidence: [], vars: {}}))
  }
  checks.push({
    name: 'kernel',
    ok: missing.size === 0 && !input.cannotRun,
    message:
      missing.size === 0
        ? `link types available: ${to.linkKinds.join(', ') || 'none needed'}`
        : `missing: ${[...missing.keys()].join(', ')}`,
  })

  // 4. daemons: netctl runs them only in its lab; their programs must exist
  const daemons = [...new Set([...to.daemons, ...from.daemons])]
  let daemonsOk = true
  if (daemons.length > 0 && !input.managesDaemons) {
    daemonsOk = false
    findings.push(
      refusal('DAEMON_UNMANAGED', {
        subject: daemons.join(', '),
        message: `${plan.from} -> ${plan.to} needs ${daemons.join(' and ')} started, stopped or reconfigured on every node; netctl runs backend daemons only in its own lab`,
        evidence: [],
        vars: {},
      }),
    )
  }
  for (const d of to.daemons) {
    for (const tool of DAEMON_TOOLS[d]) {
      const lacking = facts.nodes.filter((n) => {
        const a = answers[n.name]
        return typeof a !== 'string' && a?.tools[tool] === false
      })
      if (lacking.length > 0 && input.managesDaemons) {
        daemonsOk = false
        findings.push(
          refusal('DAEMON_PROGRAM_MISSING', {
            subject: tool,
            message: `${plan.to} runs ${tool} on every node, and ${names(lacking.map((n) => n.name))} cannot find it`,
            evidence: [],
            vars: {program: tool},
          }),
        )
      }
    }
  }
  checks.push({
    name: 'daemons',
    ok: daemonsOk,
    message:
      daemons.length === 0
        ? 'no daemons involved'
        : daemonsOk
          ? `${daemons.join(', ')}: managed by netctl, programs present`
          : 'cannot run the daemons',
  })

  // 5. L2 adjacency, for backends whose next hop is the peer node
  const notAdjacent = to.needsL2 ? nonAdjacentPairs(facts, snapshot, answers) : {pairs: [], evidence: []}
  if (notAdjacent.pairs.length > 0) {
    findings.push(
      refusal('HOSTGW_NOT_L2_ADJACENT', {
        subject: notAdjacent.pairs.join(', '),
        message: `${plan.to} needs every node pair L2-adjacent (${
          to.daemons.includes('bird')
            ? "BIRD's next hop is the peer node, resolved through the router that reaches it, and the router knows no pod route"
            : 'the next hop is the peer node itself'
        }); ${notAdjacent.pairs.length} pair(s) are not: ${names(notAdjacent.pairs)}`,
        evidence: notAdjacent.evidence,
        vars: {},
      }),
    )
  }
  checks.push({
    name: 'l2-adjacency',
    ok: notAdjacent.pairs.length === 0,
    message: !to.needsL2
      ? 'not needed: packets are encapsulated between nodes'
      : notAdjacent.pairs.length === 0
        ? 'every node pair is L2-adjacent'
        : `${notAdjacent.pairs.length} pair(s) not L2-adjacent`,
  })

  return {ok: !findings.some((f) => f.severity === 'error'), checks, findings, notAdjacent: notAdjacent.pairs}
}

/**
 * A pair is adjacent when each side has the other's address on a connected
 * subnet of its uplink and the kernel's `ip route get` names no gateway.
 */
function nonAdjacentPairs(
  facts: ClusterFacts,
  snapshot: Snapshot,
  answers: PreflightInput['answers'],
): {pairs: string[]; evidence: string[]} {
  const pairs: string[] = []
  const evidence: string[] = []
  const why = (a: ClusterFacts['nodes'][number], b: ClusterFacts['nodes'][number]): string | undefined => {
    const connected = (snapshot.nodeStates[a.name]?.addresses ?? [])
      .filter((x) => x.family === 'inet' && x.dev === a.uplink)
      .map((x) => `${x.local}/${x.prefixlen}`)
    const onSubnet = connected.some((c) => cidrContainsAddress(c, b.ip))
    const answer = answers[a.name]
    const got = typeof answer === 'string' ? undefined : answer?.routes.find((r) => r.peer === b.ip)
    if (!onSubnet)
      return `${a.name} -> ${b.name} (${b.ip}): not on a connected subnet of ${a.uplink} (${connected.join(', ') || 'no address'})${got?.gateway ? `; ip route get: via ${got.gateway} dev ${got.dev}` : ''}`
    if (got?.gateway) return `${a.name} -> ${b.name} (${b.ip}): ip route get: via ${got.gateway} dev ${got.dev}`
    if (got?.error) return `${a.name} -> ${b.name} (${b.ip}): ip route get: ${got.error}`
    return undefined
  }
  // a node that was not collected is unknown, not far away: the collection check already refuses
  const known = facts.nodes.filter(
    (n) => snapshot.nodeStates[n.name] !== undefined && typeof answers[n.name] !== 'string',
  )
  for (const [i, a] of known.entries()) {
    for (const b of known.slice(i + 1)) {
      const reasons = [why(a, b), why(b, a)].filter((x): x is string => x !== undefined)
      if (reasons.length > 0) {
        pairs.push(`${a.name}-${b.name}`)
        evidence.push(...reasons)
      }
    }
  }
  return {pairs, evidence}
}
