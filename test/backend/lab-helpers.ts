import {expect} from 'vitest'

import {run} from '../../src/util/exec.js'
import {validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {ipJson, type LabUp, ping} from '../helpers/lab.js'

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
