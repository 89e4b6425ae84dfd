import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterEach, expect, it} from 'vitest'

import {listNetns, netnsId, netnsIdOf, sameNetns} from '../../src/lab/netns-setup.js'
import {defaultStateRoot} from '../../src/lab/topology.js'
import {run} from '../../src/util/exec.js'
import {validatorFor} from '../../src/util/schema.js'
import {BIN, netctl, netctlJson} from '../helpers/cli.js'
import {describeLab, uniqueLabName} from '../helpers/lab.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A process the test started and still runs (not a zombie). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

async function ip(args: string[]): Promise<void> {
  const r = await run('ip', args)
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`)
}

/** Everything the tests start, so that afterEach stops it (by PID: only what the test itself started). */
const started: ChildProcess[] = []
const namespaces: string[] = []
const labs: string[] = []

afterEach(async () => {
  for (const c of started.splice(0)) if (c.pid !== undefined && c.exitCode === null) c.kill('SIGKILL')
  for (const name of labs.splice(0)) await netctl(['lab', 'down', '--name', name])
  for (const ns of namespaces.splice(0)) await run('ip', ['netns', 'delete', ns])
})

/** `sleep 300` in namespace `ns`, started by the test; resolves once the sleep really lives there. */
async function sleepIn(ns: string): Promise<number> {
  const child = spawn('ip', ['netns', 'exec', ns, 'sleep', '300'], {stdio: 'ignore'})
  started.push(child)
  const pid = child.pid!
  const want = netnsId(ns)
  for (let i = 0; i < 100; i++) {
    if (sameNetns(netnsIdOf(`/proc/${pid}/ns/net`), want) && /sleep/.test(readFileSync(`/proc/${pid}/comm`, 'utf8')))
      return pid
    await sleep(20)
  }
  throw new Error(`sleep in ${ns} did not start`)
}

/**
 * A namespace that is not any lab's, standing in for the machine's own (never
 * the real root namespace in a test): made by the test, with a sleep in it.
 */
async function standIn(): Promise<{ns: string; pid: number}> {
  const ns = uniqueLabName('lsstand')
  await ip(['netns', 'add', ns])
  namespaces.push(ns)
  return {ns, pid: await sleepIn(ns)}
}

async function labUp(prefix: string, args: string[] = [], proxyMode = 'none'): Promise<any> {
  const name = uniqueLabName(prefix)
  labs.push(name)
  // a bare dataplane by default (no agents, so no Service responders): these tests count every process in the lab's namespaces
  const r = await netctlJson([
    'lab',
    'up',
    '--name',
    name,
    '--nodes',
    '2',
    '--pods-per-node',
    '1',
    '--proxy-mode',
    proxyMode,
    ...args,
  ])
  if (r.code !== 0) throw new Error(`lab up ${name}: ${r.stderr}`)
  return r.json
}

describeLab('lab down: only what the lab made', () => {
  it('refuses, in one line with exit 4, a name of the lab that points at a namespace the lab did not make, and its process survives', async () => {
    const lab = await labUp('ls')
    const other = await standIn()
    // the lab's fabric name now points at the stand-in (as `ip netns attach` can do with any process's namespace)
    await ip(['netns', 'delete', `${lab.name}.fabric`])
    await ip(['netns', 'attach', `${lab.name}.fabric`, String(other.pid)])
    namespaces.push(`${lab.name}.fabric`)

    const down = await netctl(['lab', 'down', '--name', lab.name])
    expect(down.code).toBe(4)
    expect(down.stderr.trim().split('\n')).toHaveLength(1)
    expect(down.stderr).toMatch(
      new RegExp(`${lab.name}\\.fabric is not the namespace lab ${lab.name} made.*nothing was changed`),
    )
    expect(running(other.pid)).toBe(true)
    // nothing was changed: the lab's other namespaces and its record are still there
    expect(await listNetns()).toEqual(expect.arrayContaining([`${lab.name}.node1`, `${lab.name}.node1.pod1`]))
    expect(existsSync(path.join(lab.stateDir, 'lab.json'))).toBe(true)
    const json = await netctlJson(['lab', 'down', '--name', lab.name])
    expect(json.code).toBe(4)
    expect(json.json.error).toMatchObject({code: 'REFUSED', exitCode: 4})
    expect(validatorFor('error')(json.json)).toBe(true)
    // nor does anything else enter the lab through that name
    const get = await netctl(['backend', 'get', '--lab', lab.name])
    expect(get.code).toBe(4)
    expect(get.stderr.trim().split('\n')).toHaveLength(1)
    expect(get.stderr).toMatch(
      new RegExp(`${lab.name}\\.fabric is not the namespace the lab made; refusing to enter it`),
    )
    const status = await netctlJson(['lab', 'status', '--name', lab.name])
    expect(status.code).toBe(1)
    expect(status.json).toMatchObject({status: 'degraded', missing: [], foreign: [`${lab.name}.fabric`]})

    // a name the lab never recorded, with a process in it: refused too
    await ip(['netns', 'delete', `${lab.name}.fabric`])
    await ip(['netns', 'attach', `${lab.name}.extra`, String(other.pid)])
    namespaces.push(`${lab.name}.extra`)
    const again = await netctl(['lab', 'down', '--name', lab.name])
    expect(again.code).toBe(4)
    expect(again.stderr.trim().split('\n')).toHaveLength(1)
    expect(again.stderr).toMatch(
      new RegExp(`${lab.name}\\.extra is not recorded as made by lab ${lab.name}, and 1 process lives in it`),
    )
    expect(running(other.pid)).toBe(true)

    // once the name is its own again, the lab goes, and the stand-in's process still lives
    await ip(['netns', 'delete', `${lab.name}.extra`])
    const ok = await netctlJson(['lab', 'down', '--name', lab.name])
    expect(ok.code).toBe(0)
    expect(ok.json.processes).toEqual([])
    expect((await listNetns()).filter((n) => n.startsWith(`${lab.name}.`))).toEqual([])
    expect(running(other.pid)).toBe(true)
  })

  it('lists an orphan whose fabric name points at a namespace with processes as refused, and lab down leaves it alone', async () => {
    const other = await standIn()
    const orphan = uniqueLabName('lso')
    await ip(['netns', 'attach', `${orphan}.fabric`, String(other.pid)])
    namespaces.push(`${orphan}.fabric`)

    const list = await netctlJson(['lab', 'list'])
    expect(validatorFor('lab-list')(list.json)).toBe(true)
    const entry = list.json.labs.find((l: any) => l.name === orphan)
    expect(entry).toMatchObject({status: 'refused', namespaces: 1})
    expect(entry.reason).toMatch(/not recorded as made by lab .*1 process lives in it/)
    expect((await netctl(['lab', 'list'])).stdout).toMatch(
      new RegExp(`${orphan}: refused: ${orphan}\\.fabric is not recorded`),
    )

    const down = await netctl(['lab', 'down', '--name', orphan])
    expect(down.code).toBe(4)
    expect(down.stderr.trim().split('\n')).toHaveLength(1)
    expect(running(other.pid)).toBe(true)
    expect(await listNetns()).toContain(`${orphan}.fabric`)
  })

  it('kills the processes of a node whose namespace name was deleted, found by the identity the lab recorded, and only those', async () => {
    const lab = await labUp('lsn')
    const record = JSON.parse(readFileSync(path.join(lab.stateDir, 'lab.json'), 'utf8'))
    const node1 = `${lab.name}.node1`
    // the record holds the identity of every namespace, as stat -L gives it
    expect(Object.keys(record.netnsIds).sort()).toEqual(
      [`${lab.name}.fabric`, node1, `${node1}.pod1`, `${lab.name}.node2`, `${lab.name}.node2.pod1`].sort(),
    )
    expect(sameNetns(record.netnsIds[node1], netnsId(node1))).toBe(true)

    const daemon = await sleepIn(node1)
    const other = await standIn()
    await ip(['netns', 'delete', node1]) // the namespace lives on: the sleep holds it
    expect(running(daemon)).toBe(true)

    const down = await netctlJson(['lab', 'down', '--name', lab.name])
    expect(down.code).toBe(0)
    expect(down.json.processes).toEqual([daemon])
    for (let i = 0; i < 50 && running(daemon); i++) await sleep(50)
    expect(running(daemon)).toBe(false)
    expect(running(other.pid)).toBe(true)
  })
  it("never signals a process in a namespace that was given, once the lab's was freed, the inode the lab recorded", async () => {
    const lab = await labUp('lsr')
    const file = path.join(lab.stateDir, 'lab.json')
    const pod = lab.pods.find((p: any) => p.node === 'node2').netns
    // The kernel hands a freed namespace's inode to whatever it makes next (on
    // a busy machine, within moments, to someone else). Deterministically: the
    // pod's namespace is freed, and the inode the lab recorded for it is the
    // stand-in's, a namespace with a process of its own.
    await ip(['netns', 'delete', pod])
    const other = await standIn()
    const record = JSON.parse(readFileSync(file, 'utf8'))
    record.netnsIds[pod] = netnsId(other.ns)
    writeFileSync(file, JSON.stringify(record))

    const down = await netctlJson(['lab', 'down', '--name', lab.name])
    expect(down.code).toBe(0)
    expect(down.json.processes).toEqual([])
    expect(running(other.pid)).toBe(true)
  })
})

describeLab('lab down with the agents on: the Service responders it started go too', () => {
  /** the processes whose namespace carries the mark of namespace `ns` (its name as lo's alias), found among the given PIDs */
  async function markedIn(ns: string, pids: number[]): Promise<number[]> {
    const out: number[] = []
    for (const pid of pids) {
      const r = await run('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-j', 'link', 'show', 'dev', 'lo'])
      if (r.code === 0 && JSON.parse(r.stdout)[0]?.ifalias === ns) out.push(pid)
    }
    return out
  }

  it("kills the responders of an endpoint pod whose namespace name was deleted and whose recorded identity the kernel gave to another namespace; the other namespace's process survives", async () => {
    const lab = await labUp('lsa', [], 'iptables')
    const file = path.join(lab.stateDir, 'lab.json')
    // pod-node2-1 is an endpoint of the web Service and of kube-dns: the lab's responder (src/lab/responder.ts) answers all their ports
    const pod = lab.pods.find((p: any) => p.name === 'pod-node2-1').netns
    const responders = (await run('ip', ['netns', 'pids', pod])).stdout.split('\n').filter(Boolean).map(Number)
    const argv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0')
    expect(
      responders.map((pid) =>
        argv(pid)
          .slice(1)
          .map((a, i) => (i === 0 ? path.basename(a) : a)),
      ),
    ).toEqual([['responder.js', 'pod-node2-1', '53/udp', '53/tcp', '8080/tcp']])
    // the name goes; the namespace lives on, held by the responders
    await ip(['netns', 'delete', pod])
    try {
      // the kernel hands freed inodes on within a second: here, deterministically, the one the lab recorded now names a stand-in with a process of its own
      const other = await standIn()
      const record = JSON.parse(readFileSync(file, 'utf8'))
      record.netnsIds[pod] = netnsId(other.ns)
      writeFileSync(file, JSON.stringify(record))

      const down = await netctlJson(['lab', 'down', '--name', lab.name])
      expect(down.code, down.stderr).toBe(0)
      expect(down.json.processes).toEqual(expect.arrayContaining(responders))
      expect(down.json.processes).not.toContain(other.pid)
      for (let i = 0; i < 50 && responders.some(running); i++) await sleep(50)
      expect(await markedIn(pod, responders.filter(running))).toEqual([])
      expect(running(other.pid)).toBe(true)
    } finally {
      // a failed run leaves no responder behind: only those the lab started, still in the namespace that carries its mark
      for (const pid of await markedIn(pod, responders.filter(running))) process.kill(pid, 'SIGKILL')
    }
  })
})

describeLab('lab status and lab list: one state, the true one', () => {
  it('calls a lab with a missing pod namespace degraded, names it, and exits 1; lab list says the same', async () => {
    const lab = await labUp('lsd')
    const gone = lab.pods.find((p: any) => p.node === 'node2').netns
    await ip(['netns', 'delete', gone])

    const status = await netctlJson(['lab', 'status', '--name', lab.name, '--no-ping'])
    expect(status.code).toBe(1)
    const validate = validatorFor('lab-status')
    expect(validate(status.json), JSON.stringify(validate.errors)).toBe(true)
    expect(status.json).toMatchObject({status: 'degraded', missing: [gone], foreign: []})
    expect(status.json.pods.find((p: any) => p.netns === gone).present).toBe(false)
    const text = await netctl(['lab', 'status', '--name', lab.name, '--no-ping'])
    expect(text.code).toBe(1)
    expect(text.stdout).toMatch(new RegExp(`degraded \\(missing ${gone.replace(/\./g, '\\.')}\\)`))

    const list = await netctlJson(['lab', 'list'])
    expect(list.json.labs.find((l: any) => l.name === lab.name)).toMatchObject({
      status: 'degraded',
      reason: `missing ${gone}`,
    })

    // with every namespace there, the same lab is up, and lab status exits 0
    const whole = await labUp('lsu')
    const ok = await netctlJson(['lab', 'status', '--name', whole.name, '--no-ping'])
    expect(ok.code).toBe(0)
    expect(ok.json).toMatchObject({status: 'up', missing: [], foreign: []})
    expect((await netctlJson(['lab', 'list'])).json.labs.find((l: any) => l.name === whole.name).status).toBe('up')
  })

  it('says creating while its lab up runs, failed once that lab up is killed, in lab status and lab list alike; lab down then removes it all', async () => {
    const name = uniqueLabName('lsk')
    labs.push(name)
    const {NODE_ENV: _testEnv, ...env} = process.env
    const up = spawn(process.execPath, [BIN, 'lab', 'up', '--name', name, '--nodes', '8', '--pods-per-node', '3'], {
      env,
      stdio: 'ignore',
    })
    started.push(up)
    const file = path.join(defaultStateRoot(), name, 'lab.json')
    // stop the lab up (the test's own child) once it has recorded the lab and made a namespace: it is still building it
    for (let i = 0; i < 400; i++) {
      if (existsSync(file) && Object.keys(JSON.parse(readFileSync(file, 'utf8')).netnsIds ?? {}).length > 0) break
      await sleep(25)
    }
    up.kill('SIGSTOP')
    const state = async (): Promise<string[]> => {
      const status = await netctlJson(['lab', 'status', '--name', name, '--no-ping'])
      const list = await netctlJson(['lab', 'list'])
      expect(validatorFor('lab-status')(status.json)).toBe(true)
      expect(status.code).toBe(1)
      return [status.json.status, list.json.labs.find((l: any) => l.name === name)?.status]
    }
    expect(await state()).toEqual(['creating', 'creating'])

    up.kill('SIGKILL')
    await new Promise((r) => (up.exitCode === null && up.signalCode === null ? up.once('exit', r) : r(undefined)))
    expect(await state()).toEqual(['failed', 'failed'])
    const status = await netctlJson(['lab', 'status', '--name', name, '--no-ping'])
    expect(status.json.reason).toMatch(/lab up \(pid \d+\) ended before the lab was up/)

    const down = await netctl(['lab', 'down', '--name', name])
    expect(down.code).toBe(0)
    expect((await listNetns()).filter((n) => n.startsWith(`${name}.`))).toEqual([])
    expect(existsSync(file)).toBe(false)
  })
})
