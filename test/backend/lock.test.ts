import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {whyStopped} from '../../src/backend/act/apply.js'
import {runBatch} from '../../src/backend/act/batch.js'
import {
  acquireLock,
  currentHolder,
  FileLock,
  HOLDER_ANNOTATION,
  holderState,
  LEASE_NAME,
  LeaseLock,
  LockHeldError,
  type LockHolder,
  processStart,
  type ProcessTable,
} from '../../src/backend/act/lock.js'
import {KubeApi} from '../../src/cluster/kube-api.js'
import {parseDuration} from '../../src/util/duration.js'
import {KubeApiServer} from '../helpers/kube-apiserver.js'

const holder = (over: Partial<LockHolder> = {}): LockHolder => ({
  host: 'here',
  pid: 4242,
  pidStart: 1000,
  user: 'alice',
  since: '2026-12-04T10:00:00.000Z',
  command: 'backend set flannel-host-gw',
  ...over,
})

/** A process table of a host where exactly these pids run, with these start times. */
const table = (running: Record<number, number | 'unknown'>, host = 'here'): ProcessTable => ({
  host,
  startOf: (pid) => running[pid],
})

/** A pid that certainly ran on this host and is gone now. */
function deadPid(): number {
  return spawnSync('true').pid!
}

describe('stale locks: is the holder still there', () => {
  it('a holder on another host cannot be judged: unknown, never stale', () => {
    expect(holderState(holder({host: 'elsewhere'}), table({}))).toBe('unknown')
  })
  it('same host, pid gone: dead', () => {
    expect(holderState(holder(), table({}))).toBe('dead')
  })
  it('same host, the pid now belongs to a process started at another time: dead (pid reused)', () => {
    expect(holderState(holder(), table({4242: 2000}))).toBe('dead')
  })
  it("same host, same pid, same start: alive; start unreadable (someone else's /proc): alive", () => {
    expect(holderState(holder(), table({4242: 1000}))).toBe('alive')
    expect(holderState(holder(), table({4242: 'unknown'}))).toBe('alive')
    expect(holderState(holder({pidStart: undefined}), table({4242: 5}))).toBe('alive')
  })
  it('the real process table: this process is alive, an exited child is dead', () => {
    expect(holderState(currentHolder('test'))).toBe('alive')
    expect(processStart(process.pid)).toBeGreaterThan(0)
    expect(holderState({...currentHolder('test'), pid: deadPid()})).toBe('dead')
  })
})

describe('durations as kubectl takes them', () => {
  it('parses 0, bare seconds, 30s, 5m, 1h30m, 500ms; refuses the rest', () => {
    expect(['0', '45', '30s', '5m', '1h30m', '500ms', '1.5s'].map(parseDuration)).toEqual([
      0, 45_000, 30_000, 300_000, 5_400_000, 500, 1500,
    ])
    expect(['', 'soon', '-1s', '5 m', '1d'].map(parseDuration)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ])
  })
})

describe('a change lock file', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'netctl-lock-'))
  })
  afterAll(() => rmSync(dir, {recursive: true, force: true}))
  const file = (name: string): string => path.join(dir, name)

  it('one holder at a time; the second is told who and since when; released, it is free again', async () => {
    const here = table({4242: 1000, 5151: 7})
    const a = new FileLock(file('a.lock'), 'lab demo', holder(), here)
    const b = new FileLock(file('a.lock'), 'lab demo', holder({pid: 5151, pidStart: 7, user: 'bob'}), here)
    expect(await a.tryAcquire()).toEqual({ok: true})
    expect(JSON.parse(readFileSync(file('a.lock'), 'utf8'))).toMatchObject({host: 'here', pid: 4242, user: 'alice'})
    const refused = await b.tryAcquire()
    expect(refused).toMatchObject({
      ok: false,
      held: {who: 'alice@here (pid 4242, netctl backend set flannel-host-gw)', since: '2026-12-04T10:00:00.000Z'},
    })
    const error = await acquireLock(b, {timeoutMs: 0}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LockHeldError)
    expect((error as LockHeldError).exitCode).toBe(4)
    expect((error as LockHeldError).message).toBe(
      `refused: lab demo is being changed by alice@here (pid 4242, netctl backend set flannel-host-gw) since 2026-12-04T10:00:00.000Z; retry later or pass --lock-timeout to wait; if that run is gone, remove ${file('a.lock')}`,
    )
    await a.release()
    expect(existsSync(file('a.lock'))).toBe(false)
    expect(await b.tryAcquire()).toEqual({ok: true})
    await b.release()
  })

  it('a lock whose holder died on this host is taken over, saying from whom', async () => {
    writeFileSync(file('stale.lock'), JSON.stringify(holder({pid: 999_999})))
    const lines: string[] = []
    const lock = new FileLock(
      file('stale.lock'),
      'lab demo',
      holder({pid: 5151, pidStart: 7, user: 'bob'}),
      table({5151: 7}),
    )
    expect(await acquireLock(lock, {timeoutMs: 0, say: (l) => lines.push(l)})).toEqual({waited: false})
    expect(lines).toEqual([
      'took over the change lock of lab demo from alice@here (pid 999999, netctl backend set flannel-host-gw) (since 2026-12-04T10:00:00.000Z): its holder is gone',
    ])
    expect(JSON.parse(readFileSync(file('stale.lock'), 'utf8')).user).toBe('bob')
    await lock.release()
  })

  it('a holder on another host is never taken over, however old', async () => {
    writeFileSync(file('remote.lock'), JSON.stringify(holder({host: 'build-7', since: '2020-01-01T00:00:00.000Z'})))
    const r = await new FileLock(file('remote.lock'), 'lab demo', holder({pid: 5151}), table({})).tryAcquire()
    expect(r).toMatchObject({ok: false, held: {who: 'alice@build-7 (pid 4242, netctl backend set flannel-host-gw)'}})
  })

  it('many runs racing for a free lock, or for one stale lock: exactly one gets it', async () => {
    for (const stale of [false, true]) {
      const f = file(`race-${stale}.lock`)
      if (stale) writeFileSync(f, JSON.stringify(holder({pid: 999_999})))
      const pids = [6001, 6002, 6003, 6004, 6005, 6006]
      const here = table(Object.fromEntries(pids.map((p) => [p, 1])))
      const results = await Promise.all(
        pids.map((pid) => new FileLock(f, 'lab demo', holder({pid, pidStart: 1}), here).tryAcquire()),
      )
      expect(
        results.filter((r) => r.ok),
        `stale=${stale}`,
      ).toHaveLength(1)
      const winner = pids[results.findIndex((r) => r.ok)]
      expect(JSON.parse(readFileSync(f, 'utf8')).pid).toBe(winner)
      for (const r of results.filter((x) => !x.ok)) expect(r).toMatchObject({held: {holder: {pid: winner}}})
    }
  })

  it('a directory it may not write in: refused in one line (exit 4), no stack', async () => {
    const error = await new FileLock(path.join(dir, 'no-such-dir', 'x.lock'), 'lab demo', holder())
      .tryAcquire()
      .catch((e: unknown) => e)
    expect(error).toMatchObject({exitCode: 4, code: 'LOCK_FAILED'})
    expect((error as Error).message).toMatch(/^cannot take the change lock .*x\.lock: ENOENT/)
  })

  it("release never removes a lock that is someone else's now", async () => {
    const here = table({4242: 1000})
    const a = new FileLock(file('mine.lock'), 'lab demo', holder(), here)
    await a.tryAcquire()
    writeFileSync(file('mine.lock'), JSON.stringify(holder({pid: 7777})))
    await a.release()
    expect(JSON.parse(readFileSync(file('mine.lock'), 'utf8')).pid).toBe(7777)
  })

  it('--lock-timeout: waits for the holder to let go, and says it waits; or gives up naming how long it waited', async () => {
    const here = table({4242: 1000, 5151: 7})
    const a = new FileLock(file('wait.lock'), 'lab demo', holder(), here)
    await a.tryAcquire()
    const b = new FileLock(file('wait.lock'), 'lab demo', holder({pid: 5151, pidStart: 7}), here)
    const late = await acquireLock(b, {timeoutMs: 300, pollMs: 50}).catch((e: Error) => e.message)
    expect(late).toMatch(/^refused: lab demo is being changed by alice@here .*, waited \d+ms; /)
    const lines: string[] = []
    setTimeout(() => void a.release(), 300)
    expect(await acquireLock(b, {timeoutMs: 5000, pollMs: 50, say: (l) => lines.push(l)})).toEqual({waited: true})
    expect(lines).toEqual([
      'waiting up to 5s for alice@here (pid 4242, netctl backend set flannel-host-gw), who is changing lab demo',
    ])
    await b.release()
  })
})

describe('a change Lease (coordination.k8s.io/v1) on the API-server emulator', () => {
  let server: KubeApiServer
  let api: KubeApi
  let dir: string
  const ns = 'kube-flannel'
  const lease = () => server.get('leases', ns, LEASE_NAME)
  beforeAll(async () => {
    server = await KubeApiServer.start()
    server.add({apiVersion: 'v1', kind: 'Namespace', metadata: {name: ns}})
    dir = mkdtempSync(path.join(tmpdir(), 'netctl-lease-'))
    api = await KubeApi.connect({kubeconfig: server.writeKubeconfig(path.join(dir, 'kubeconfig'), {})})
  })
  afterAll(async () => {
    await server?.close()
    rmSync(dir, {recursive: true, force: true})
  })

  it('created with holderIdentity, duration, acquire and renew times in MicroTime; renewed while held; a second holder refused; released', async () => {
    const here = table({4242: 1000, 5151: 7})
    const a = new LeaseLock(api, ns, holder(), {durationSeconds: 2}, here)
    expect(await a.tryAcquire()).toEqual({ok: true})
    const l = lease()!
    expect(l.spec).toMatchObject({holderIdentity: 'alice@here_4242', leaseDurationSeconds: 2, leaseTransitions: 0})
    expect(l.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
    expect(JSON.parse(l.metadata.annotations[HOLDER_ANNOTATION])).toMatchObject({
      host: 'here',
      pid: 4242,
      user: 'alice',
    })
    // longer than its duration: held all along, because it is renewed every third of it
    await new Promise((r) => setTimeout(r, 3000))
    expect(Date.parse(lease()!.spec.renewTime)).toBeGreaterThan(Date.parse(l.spec.renewTime))
    const b = new LeaseLock(api, ns, holder({pid: 5151, pidStart: 7, user: 'bob'}), {durationSeconds: 2}, here)
    const refused = await acquireLock(b, {timeoutMs: 0}).catch((e: Error) => e.message)
    expect(refused).toMatch(
      new RegExp(
        `^refused: the cluster \\(Lease ${ns}/${LEASE_NAME}\\) is being changed by alice@here \\(pid 4242, netctl backend set flannel-host-gw\\) since \\S+; retry later or pass --lock-timeout to wait; its lease expires at \\S+ unless renewed$`,
      ),
    )
    await a.release()
    expect(lease()!.spec.holderIdentity).toBeUndefined()
    expect(await b.tryAcquire()).toEqual({ok: true})
    // a new holder after another: one transition
    expect(lease()!.spec).toMatchObject({holderIdentity: 'bob@here_5151', leaseTransitions: 1})
    await b.release()
  })

  it('an expired Lease (not renewed within its duration) is taken over, even one another tool holds', async () => {
    const old = new Date(Date.now() - 10 * 60_000).toISOString().replace('Z', '000Z')
    server.update('leases', ns, LEASE_NAME, (o) => {
      o.spec = {
        holderIdentity: 'ci-runner-3_0b1e',
        leaseDurationSeconds: 60,
        acquireTime: old,
        renewTime: old,
        leaseTransitions: 4,
      }
      o.metadata.annotations = {}
    })
    const lines: string[] = []
    const c = new LeaseLock(api, ns, holder({pid: 6161}), {durationSeconds: 30}, table({6161: 1}))
    await acquireLock(c, {timeoutMs: 0, say: (l) => lines.push(l)})
    expect(lines).toEqual([
      `took over the change lock of the cluster (Lease ${ns}/${LEASE_NAME}) from holder "ci-runner-3_0b1e" (since ${old}): its holder is gone`,
    ])
    expect(lease()!.spec).toMatchObject({holderIdentity: 'alice@here_6161', leaseTransitions: 5})
    await c.release()
  })

  it('a held Lease whose holder died on this host is taken over; one held from another host is not', async () => {
    const d = new LeaseLock(api, ns, holder({pid: 7171, pidStart: 3}), {durationSeconds: 30}, table({7171: 3}))
    await d.tryAcquire()
    // d's process is gone (as after kill -9): the same host sees it
    const e = new LeaseLock(api, ns, holder({pid: 8181}), {durationSeconds: 30}, table({8181: 1}))
    expect(await e.tryAcquire()).toMatchObject({ok: true, tookOver: {holder: {pid: 7171}}})
    const f = new LeaseLock(api, ns, holder({pid: 9191, host: 'other'}), {durationSeconds: 30}, table({}, 'other'))
    expect(await f.tryAcquire()).toMatchObject({ok: false, held: {holder: {pid: 8181}}})
    await e.release()
    await d.release() // not its Lease any more: leaves it alone
    expect(lease()!.spec.holderIdentity).toBeUndefined()
  })

  it("two runs racing for a free Lease: the API server's resourceVersion lets exactly one have it", async () => {
    const pids = [100, 101, 102, 103]
    const here = table(Object.fromEntries(pids.map((p) => [p, 1])))
    const locks = pids.map((pid) => new LeaseLock(api, ns, holder({pid, pidStart: 1}), {durationSeconds: 30}, here))
    const results = await Promise.all(locks.map((l) => l.tryAcquire()))
    expect(results.filter((r) => r.ok)).toHaveLength(1)
    const winner = pids[results.findIndex((r) => r.ok)]
    expect(lease()!.spec.holderIdentity).toBe(`alice@here_${winner}`)
    for (const l of locks) await l.release()
  })

  it('a holder whose Lease was taken from it learns so at its next renewal', async () => {
    let lostTo: string | undefined
    const g = new LeaseLock(
      api,
      ns,
      holder({pid: 300, pidStart: 1}),
      {durationSeconds: 1, onLost: (by) => (lostTo = by)},
      table({300: 1}),
    )
    await g.tryAcquire()
    server.update('leases', ns, LEASE_NAME, (o) => {
      o.spec.holderIdentity = 'someone-else'
    })
    await new Promise((r) => setTimeout(r, 1000))
    expect(lostTo).toBe('holder "someone-else"')
    await g.release()
    expect(lease()!.spec.holderIdentity).toBe('someone-else')
  })

  it('the emulator validates Leases as the API server does', async () => {
    const bad = await api
      .create('/apis/coordination.k8s.io/v1/namespaces/kube-flannel/leases', {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: {name: 'x'},
        spec: {leaseDurationSeconds: 0},
      })
      .catch((e: Error) => e.message)
    expect(bad).toMatch(/422 .*spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0/)
  })
})

describe('why a switch is undone', () => {
  it('a signal is the reason, not the empty failure of the ip -batch it killed on its way', () => {
    expect(whyStopped({aborted: true, signal: 'SIGINT', reason: 'node1 failed'}, 'netns rl3.node1: ')).toBe(
      'interrupted by SIGINT',
    )
    expect(whyStopped({aborted: true, reason: 'node1 failed'}, 'netns x.node1: RTNETLINK answers: File exists')).toBe(
      'netns x.node1: RTNETLINK answers: File exists',
    )
    expect(whyStopped({aborted: true, reason: 'lost the change lock to bob'}, undefined)).toBe(
      'lost the change lock to bob',
    )
    expect(whyStopped({aborted: false}, undefined)).toBeUndefined()
  })

  it('an ip -batch killed by a signal says so, never an empty reason', async () => {
    const killed = {
      target: 'netns rl3.node1',
      exec: async () => ({stdout: '', stderr: 'netctl-batch ip\n', code: 130}),
      close: async () => {},
    }
    await expect(runBatch('node1', killed, ['route replace 10.0.0.0/24 via 1.2.3.4 dev eth0'], [])).rejects.toThrow(
      /^netns rl3.node1: ip -batch ended with status 130 \(killed by a signal\)$/,
    )
    // -force goes past errors, not past a signal
    await expect(runBatch('node1', killed, ['link del flannel.1'], [], {force: true})).rejects.toThrow(
      /killed by a signal/,
    )
  })
})
