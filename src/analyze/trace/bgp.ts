import type {FindingCode} from '../../model/finding.js'
import type {BgpRoute, BgpSession, Route} from '../../model/node-state.js'
import {parseCidr} from '../ip.js'
import type {Place} from './place.js'
import type {Walk} from './walk-state.js'

/**
 * A route BIRD put in the kernel (`proto bird`) tied to what BIRD holds: the
 * route in its table, the BGP protocol that supplied it and that session's
 * state. A session that is not Established means the route is a leftover
 * BIRD is about to withdraw, or never should have had.
 */

function samePrefix(a: string, b: string): boolean {
  const x = parseCidr(a)
  const y = parseCidr(b)
  return !!x && !!y && x.len === y.len && x.ip.text === y.ip.text
}

/** `birdc show route` in one line. */
export function formatBirdRoute(r: BgpRoute): string {
  const via =
    r.nexthops && r.nexthops.length > 0
      ? r.nexthops.map((n) => `via ${n.gateway ?? '?'} on ${n.dev ?? '?'}`).join(', ')
      : r.gateway
        ? `via ${r.gateway} on ${r.dev ?? '?'}`
        : r.dev
          ? `dev ${r.dev}`
          : ''
  return `${r.prefix} ${r.type ?? 'unicast'} [${r.protocol}]${r.primary ? ' *' : ''}${via ? ` ${via}` : ''}`.trim()
}

/** `birdc show protocols` in one line. */
export function formatBirdSession(s: BgpSession): string {
  const words = [s.name, 'BGP', s.state, ...(s.since ? [s.since] : []), s.bgpState]
  if (s.neighborAddress)
    words.push(`neighbor ${s.neighborAddress}${s.neighborAs !== undefined ? ` AS${s.neighborAs}` : ''}`)
  if (s.lastError) words.push(`(${s.lastError})`)
  return words.join(' ')
}

export function birdEvidence(
  w: Walk,
  place: Place,
  route: Route | undefined,
): {evidence: string[]; findings: FindingCode[]} {
  const out = {evidence: [] as string[], findings: [] as FindingCode[]}
  if (!route || route.protocol !== 'bird' || route.type !== 'unicast') return out
  const status = ['bird-routes', 'bird-protocols'].map((s) => place.sections[s]).find((s) => s && s.status !== 'ok')
  const bird = place.state.bird
  if (!bird || status) {
    out.evidence.push(
      `BIRD's routes and sessions on ${place.node} are not in the snapshot${status?.message ? ` (${status.message})` : ''}: the kernel route alone decides`,
    )
    return out
  }
  const mine = bird.routes.filter((r) => samePrefix(r.prefix, route.dst))
  const best = mine.find((r) => r.primary) ?? mine[0]
  if (!best) {
    out.evidence.push(`BIRD on ${place.node} holds no route for ${route.dst}: the kernel route is a leftover`)
    return out
  }
  out.evidence.push(formatBirdRoute(best))
  const session = bird.sessions.find((s) => s.name === best.protocol)
  if (!session) return out
  out.evidence.push(formatBirdSession(session))
  if (session.bgpState !== 'Established') {
    out.findings.push(
      w.raise('BGP_SESSION_DOWN', {
        node: place.node,
        subject: session.name,
        message: `${route.dst} came from ${session.name}, which is ${session.bgpState} (${session.state}): BIRD withdraws what it learnt there`,
        evidence: out.evidence.slice(-2),
        vars: {peerIP: session.neighborAddress ?? best.gateway ?? '?', protocol: session.name},
      }),
    )
  }
  return out
}
