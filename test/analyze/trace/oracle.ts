/**
 * The kernel as the oracle for the trace walker on a live lab: a snapshot
 * collected as a user does it, real pings and TCP connects between pods,
 * and `ip route get` asked in every namespace a walk took a route decision.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import type {PacketQuery} from '../../../src/analyze/fib.js'
import type {TraceResult} from '../../../src/analyze/trace/api.js'
import {loadSnapshot, type Snapshot} from '../../../src/model/snapshot.js'
import type {Hop, Trace} from '../../../src/model/trace.js'
import {mapLimit, run} from '../../../src/util/exec.js'
import {netctl} from '../../helpers/cli.js'
import {nsExec, ping} from '../../helpers/lab.js'
import {describeQuery, kernelRouteGetMany} from '../kernel-oracle.js'

/** `netctl collect --lab NAME -o FILE`, then the file as `--snapshot` reads it. */
export async function collectLab(name: string): Promise<Snapshot> {
  const dir = await mkdtemp(path.join(tmpdir(), 'netctl-trace-'))
  try {
    const file = path.join(dir, 'snapshot.json')
    const r = await netctl(['collect', '--lab', name, '--output-file', file])
    if (r.code !== 0) throw new Error(`netctl collect --lab ${name} failed (exit ${r.code}): ${r.stderr}`)
    return await loadSnapshot(file)
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

/** A reply came back: the request and the reply were both delivered. */
export const answered = (t: Trace): boolean =>
  t.disposition === 'DELIVERED' && t.returnPath?.disposition === 'DELIVERED'

type Pod = {name: string; netns: string; ip: string; node: string}

export interface PairResult {
  src: Pod
  dst: Pod
  kernel: boolean
  result: TraceResult
}

/** Ping every ordered pair once (a few at a time) and trace the same pair. */
export async function pingPairs(pods: Pod[], trace: (src: string, dst: string) => TraceResult): Promise<PairResult[]> {
  const pairs = pods.flatMap((a) => pods.filter((b) => b !== a).map((b) => ({src: a, dst: b})))
  return mapLimit(pairs, 4, async ({src, dst}) => ({
    src,
    dst,
    kernel: await ping(src.netns, dst.ip, 1),
    result: trace(src.name, dst.name),
  }))
}

export function disagreements(results: PairResult[]): string[] {
  return results
    .filter((r) => r.kernel !== answered(r.result.trace))
    .map(
      (r) =>
        `${r.src.name} → ${r.dst.name}: ping ${r.kernel ? 'answered' : 'failed'}, netctl ${r.result.trace.disposition}/${r.result.trace.returnPath?.disposition ?? '-'}`,
    )
}

/**
 * A TCP connect from one pod to a listener in another: `nc -l` there (it ends
 * after one connection, or when `timeout` stops it), `nc -z` from here once it listens.
 */
export async function tcpConnects(
  src: {netns: string},
  dst: {netns: string; ip: string},
  port: number,
): Promise<boolean> {
  const listener = run('ip', ['netns', 'exec', dst.netns, 'timeout', '8', 'nc', '-l', String(port)], {
    timeoutMs: 15_000,
  })
  try {
    for (let i = 0; i < 50; i++) {
      const bound = await nsExec(dst.netns, ['ss', '-ltnH', `sport = :${port}`])
      if (bound.stdout.trim() !== '') break
      await new Promise((r) => setTimeout(r, 100))
    }
    const r = await nsExec(src.netns, ['nc', '-z', '-w', '2', dst.ip, String(port)], 10_000)
    return r.code === 0
  } finally {
    await listener
  }
}

/** Every route decision of a trace (both directions): the namespace and the question asked. */
export function lookups(t: Trace): Array<{hop: Hop; query: PacketQuery}> {
  return [...t.hops, ...(t.returnPath?.hops ?? [])]
    .filter((h) => h.lookup)
    .map((hop) => {
      const l = hop.lookup!
      return {
        hop,
        query: {
          dst: l.dst,
          ...(l.src ? {src: l.src} : {}),
          ...(l.iif ? {iif: l.iif} : {}),
          ...(l.oif ? {oif: l.oif} : {}),
        },
      }
    })
}

/**
 * Ask `ip route get` for every decision the walks took, in the namespace they
 * took it in; the device and gateway must be what the walk went on with.
 */
export async function routeDisagreements(
  traces: Trace[],
): Promise<{asked: number; diffs: string[]; netns: Set<string>}> {
  const byNetns = new Map<string, Map<string, {hop: Hop; query: PacketQuery}>>()
  for (const t of traces) {
    for (const x of lookups(t)) {
      const m = byNetns.get(x.hop.netns) ?? new Map()
      m.set(describeQuery(x.query), x)
      byNetns.set(x.hop.netns, m)
    }
  }
  const diffs: string[] = []
  let asked = 0
  for (const [netns, m] of byNetns) {
    const items = [...m.values()]
    const answers = await kernelRouteGetMany(
      netns,
      items.map((x) => x.query),
    )
    items.forEach((x, i) => {
      asked++
      const k = answers[i]!
      const want = x.hop.lookup!
      const where = `${netns}: ${describeQuery(x.query)}`
      if (k.error)
        diffs.push(`${where}: kernel says ${k.error}, netctl took dev ${want.dev} via ${want.gateway ?? '-'}`)
      else if (k.route?.dev !== want.dev || (k.route?.gateway ?? undefined) !== want.gateway) {
        diffs.push(
          `${where}: kernel dev ${k.route?.dev} via ${k.route?.gateway ?? '-'}, netctl dev ${want.dev} via ${want.gateway ?? '-'}`,
        )
      }
    })
  }
  return {asked, diffs, netns: new Set(byNetns.keys())}
}
