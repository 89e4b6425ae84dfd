import {expect} from 'vitest'

import {matrixEndpoints, reachabilityMatrix, walkPair} from '../../src/analyze/matrix.js'
import {clusterFacts} from '../../src/backend/plan/facts.js'
import {planSwitch} from '../../src/backend/plan/plan.js'
import type {BackendType, ConfiguredBackend} from '../../src/backend/plan/types.js'
import {applyPlan, whatIf} from '../../src/backend/plan/what-if.js'
import type {Snapshot} from '../../src/model/snapshot.js'
import type {Trace} from '../../src/model/trace.js'
import {run} from '../../src/util/exec.js'
import {validatorFor} from '../../src/util/schema.js'
import {collectLab} from '../analyze/trace/oracle.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {ipJson, type LabUp, nsExec, ping} from '../helpers/lab.js'

/**
 * What a node's kernel holds that a backend switch may touch, straight from
 * `ip -j` / `bridge -j`: every route of the main table, the PERMANENT
 * neighbours, the permanent FDB entries, and the links (without ifindex,
 * which a recreated device changes). Learned entries come and go on their own.
 */
export async function kernelOf(
  netns: string,
): Promise<{routes: unknown[]; neigh: unknown[]; fdb: unknown[]; links: unknown[]}> {
  const routes = await ipJson<unknown[]>(netns, ['route', 'show', 'table', 'main'])
  const neigh = (await ipJson<Array<{state?: string[]}>>(netns, ['neigh'])).filter((n) =>
    n.state?.includes('PERMANENT'),
  )
  const fdbOut = await run('ip', ['netns', 'exec', netns, 'bridge', '-j', 'fdb', 'show'])
  const fdb = (JSON.parse(fdbOut.stdout || '[]') as Array<{state?: string}>).filter((f) => f.state === 'permanent')
  const links = (await ipJson<Array<Record<string, unknown>>>(netns, ['-d', 'link'])).map((l) => ({
    name: l.ifname,
    kind: (l.linkinfo as {info_kind?: string} | undefined)?.info_kind,
    mtu: l.mtu,
    address: l.address,
    up: (l.flags as string[]).includes('UP'),
    master: l.master,
  }))
  return {routes, neigh, fdb, links}
}

export async function kernelOfLab(lab: LabUp): Promise<Record<string, Awaited<ReturnType<typeof kernelOf>>>> {
  const out: Record<string, Awaited<ReturnType<typeof kernelOf>>> = {}
  for (const n of lab.nodes) out[n.name] = await kernelOf(n.netns)
  return out
}

/** Every ordered pod pair answers a real ping (a few tries: the first packet may wait for ARP). */
export async function expectAllPodsReachable(lab: LabUp): Promise<void> {
  const failed: string[] = []
  for (const a of lab.pods) {
    for (const b of lab.pods) {
      if (a === b) continue
      let ok = false
      for (let i = 0; i < 3 && !ok; i++) ok = await ping(a.netns, b.ip, 1)
      if (!ok) failed.push(`${a.name} -> ${b.name} (${b.ip})`)
    }
  }
  expect(failed).toEqual([])
}

/** `backend get` and `lab status` both report `backend`, with no drift and every pod pair answering. */
export async function expectReported(lab: LabUp, backend: string): Promise<void> {
  const get = await netctlJson(['backend', 'get', '--lab', lab.name])
  expect(get.code, get.stderr).toBe(0)
  expect(validatorFor('backend-get')(get.json)).toBe(true)
  expect(get.json.cluster.configured).toBe(backend)
  expect(get.json.drift).toEqual([])
  for (const n of get.json.nodes) expect(n.programmed, n.node).toEqual([backend])
  const status = await netctlJson(['lab', 'status', '--name', lab.name])
  expect(status.code, status.stderr).toBe(0)
  expect(status.json.backend).toBe(backend)
  expect(status.json.reachability.ok).toBe(status.json.reachability.pairs)
}

/** `backend set TYPE --yes --json` on the lab, validated against its schema. */
export async function setBackend(
  lab: LabUp,
  type: string,
  extra: string[] = [],
): Promise<{code: number; json: any; stderr: string}> {
  const r = await netctlJson(['backend', 'set', type, '--lab', lab.name, '--yes', ...extra])
  const validate = validatorFor('backend-set')
  expect(validate(r.json), JSON.stringify(validate.errors?.slice(0, 3))).toBe(true)
  return r
}

export {netctl}

/** The matrix's cells as lines, for comparing two matrices pair by pair. */
export const matrixCells = (s: Snapshot): string[] =>
  reachabilityMatrix(s).cells.map((c) => `${c.src} → ${c.dst}: ${c.disposition}`)

/**
 * The walk of every matrix pair, request and reply, as its route decisions:
 * where each was taken and the device and gateway it went on with. Where
 * dispositions alone cannot tell two backends apart (CrossSubnet and Always
 * both deliver everything), the routes say which pairs go native and which
 * through the tunnel. Only the routes: the other hops depend on traffic too
 * (a pod whose ARP cache is cold has a proxy-ARP hop first), not on the backend.
 */
export function matrixPaths(s: Snapshot): Array<{pair: string; path: string; trace: Trace}> {
  const eps = matrixEndpoints(s)
  const routes = (hs: Trace['hops']): string =>
    hs
      .filter((h) => h.lookup)
      .map((h) => `${h.netns}: ${h.lookup!.dst} dev ${h.lookup!.dev ?? '-'} via ${h.lookup!.gateway ?? '-'}`)
      .join(', ')
  return eps.flatMap((a) =>
    eps
      .filter((b) => b !== a)
      .map((b) => {
        const trace = walkPair(s, a, b)
        return {
          pair: `${a.id} → ${b.id}`,
          path: `${routes(trace.hops)} | ${routes(trace.returnPath?.hops ?? [])}`,
          trace,
        }
      }),
  )
}

/** Ordered pairs of the lab's pods, one pod per node (the matrix's endpoints). */
export function nodePodPairs(lab: LabUp): Array<[LabUp['pods'][number], LabUp['pods'][number]]> {
  const first = lab.nodes.map((n) => lab.pods.find((p) => p.node === n.name)!)
  return first.flatMap((a) => first.filter((b) => b !== a).map((b): [typeof a, typeof b] => [a, b]))
}

/** A ping with DF set and SIZE bytes of IP packet; a few tries (the first may wait for ARP). */
export async function pingDF(netns: string, ip: string, size: number): Promise<boolean> {
  for (let i = 0; i < 3; i++) {
    const r = await nsExec(netns, ['ping', '-n', '-q', '-c', '1', '-W', '1', '-M', 'do', '-s', String(size - 28), ip])
    if (r.code === 0) return true
  }
  return false
}

/**
 * The what-if against the real switch: collect, predict (the plan applied to
 * the collect, no node touched), switch for real with `backend set`, collect
 * again; the predicted matrix must equal the real one pair by pair, and both
 * agree with ping. Returns the prediction and the switch's JSON.
 */
export async function expectWhatIfIsTheSwitch(
  lab: LabUp,
  to: BackendType,
  extra: string[] = [],
): Promise<{
  predicted: ReturnType<typeof whatIf>
  set: {code: number; json: any; stderr: string}
  /** the plan applied to the collect before the switch, and the collect after it */
  applied: Snapshot
  after: Snapshot
}> {
  const before = await collectLab(lab.name)
  const plan = planSwitch(before, clusterFacts(before), before.cluster.backend as ConfiguredBackend, to)
  const applied = applyPlan(before, plan)
  expect(applied.refused).toEqual([])
  const set = await setBackend(lab, to, extra)
  expect(set.code, set.json.message).toBe(0)
  const after = await collectLab(lab.name)
  expect(matrixCells(applied.snapshot)).toEqual(matrixCells(after))
  for (const c of reachabilityMatrix(after).cells) {
    const src = lab.pods.find((p) => `${p.namespace}/${p.name}` === c.src)!
    const dst = lab.pods.find((p) => `${p.namespace}/${p.name}` === c.dst)!
    expect(await ping(src.netns, dst.ip, 1), `${c.src} → ${c.dst}`).toBe(c.disposition === 'DELIVERED')
  }
  return {predicted: whatIf(before, plan), set, applied: applied.snapshot, after}
}
