import {spawn} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import path from 'node:path'

import {expect, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {BIN, netctl} from '../helpers/cli.js'
import {describeLab, useLab} from '../helpers/lab.js'
import {expectAllPodsReachable, expectReported, kernelOfLab} from './lab-helpers.js'

/** `netctl backend set ...` as a user's shell starts it: its own process group, without vitest's NODE_ENV. */
function startSet(
  args: string[],
  onStderr?: (all: string, pid: number) => void,
): {pid: number; done: Promise<{code: number | null; signal: string | null; stdout: string; stderr: string}>} {
  const {NODE_ENV: _test, ...env} = process.env
  const child = spawn(process.execPath, [BIN, 'backend', 'set', ...args], {
    env: {...env, NO_COLOR: '1'},
    detached: true,
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString()
    onStderr?.(stderr, child.pid!)
  })
  const done = new Promise<{code: number | null; signal: string | null; stdout: string; stderr: string}>((resolve) =>
    child.on('close', (code, signal) => resolve({code, signal, stdout, stderr})),
  )
  return {pid: child.pid!, done}
}

describeLab('backend set, one change at a time: a lab', () => {
  const lab = useLab('lk', ['--nodes', '3', '--pods-per-node', '1'])

  it('Ctrl-C to the whole process group mid-switch: the reason given is the signal, every node rolled back (exit 4)', async () => {
    const before = await kernelOfLab(lab.get())
    let sent = false
    const run = startSet(['flannel-host-gw', '--lab', lab.get().name, '--yes'], (all, pid) => {
      // the first node step: ip -batch runs now, a child of netctl in the same group, as a terminal's Ctrl-C reaches both
      if (!sent && /node\d: add:/.test(all)) {
        sent = true
        process.kill(-pid, 'SIGINT')
      }
    })
    const r = await run.done
    expect(sent).toBe(true)
    expect(r.code, r.stderr).toBe(4)
    expect(r.stderr).toMatch(/rolling back \d node\(s\): interrupted by SIGINT\n/)
    expect(r.stderr).toMatch(/rolled back: interrupted by SIGINT/)
    expect(await kernelOfLab(lab.get())).toEqual(before)
    await expectAllPodsReachable(lab.get())
    await expectReported(lab.get(), 'flannel-vxlan')
  })

  it('two backend set at once: exactly one applies, the other is refused naming it (exit 4); every pod pair pings, every node holds one backend', async () => {
    const args = ['flannel-host-gw', '--lab', lab.get().name, '--yes']
    const runs = [startSet(args), startSet(args)]
    const [a, b] = await Promise.all(runs.map((r) => r.done))
    const codes = [a!.code, b!.code]
    expect(codes.sort(), `${a!.stderr}\n---\n${b!.stderr}`).toEqual([0, 4])
    const winner = a!.code === 0 ? 0 : 1
    const won = [a!, b!][winner]!
    const lost = [a!, b!][1 - winner]!
    expect(won.stdout).toMatch(/flannel-vxlan -> flannel-host-gw: applied on 3 node\(s\) and verified/)
    // one line: who holds it (this host, the winner's pid, what it runs) and since when
    const line = lost.stderr.trim().split('\n').at(-1)!
    expect(line).toMatch(
      new RegExp(
        `^netctl: refused: lab ${lab.get().name} is being changed by \\S+@${hostname()} \\(pid ${runs[winner]!.pid}, netctl backend set flannel-host-gw\\) since \\d{4}-\\d\\d-\\d\\dT\\S+Z; retry later or pass --lock-timeout to wait; if that run is gone, remove \\S+/change.lock$`,
      ),
    )
    // refused before it planned: it changed nothing and said nothing else
    expect(lost.stderr).not.toMatch(/applying|rolling back/)
    expect(existsSync(path.join(lab.get().stateDir, 'change.lock'))).toBe(false)
    await expectAllPodsReachable(lab.get())
    await expectReported(lab.get(), 'flannel-host-gw')
  })

  it('--lock-timeout: two runs at once over a lock left by a run that died; one takes it over, the other waits, then finds nothing to do', async () => {
    // a netctl killed on this host left its lock: its pid is gone
    const dead = spawn('true')
    await new Promise((r) => dead.on('close', r))
    const lockFile = path.join(lab.get().stateDir, 'change.lock')
    writeFileSync(
      lockFile,
      JSON.stringify({
        host: hostname(),
        pid: dead.pid,
        user: 'root',
        since: '2026-12-04T09:00:00.000Z',
        command: 'backend set flannel-udp',
      }),
    )
    const args = ['flannel-vxlan', '--lab', lab.get().name, '--yes', '--lock-timeout', '2m']
    const [a, b] = await Promise.all([startSet(args).done, startSet(args).done])
    const both = `${a!.stderr}\n---\n${b!.stderr}`
    expect([a!.code, b!.code], both).toEqual([0, 0])
    const took = [a!, b!].filter((r) =>
      /took over the change lock of lab \S+ from root@\S+ \(pid \d+, netctl backend set flannel-udp\) \(since 2026-12-04T09:00:00.000Z\): its holder is gone/.test(
        r.stderr,
      ),
    )
    expect(took, both).toHaveLength(1)
    const waited = [a!, b!].find((r) => r !== took[0])!
    expect(took[0]!.stdout).toMatch(/flannel-host-gw -> flannel-vxlan: applied on 3 node\(s\) and verified/)
    expect(waited.stderr).toMatch(
      new RegExp(
        `waiting up to 2m for \\S+ \\(pid \\d+, netctl backend set flannel-vxlan\\), who is changing lab ${lab.get().name}`,
      ),
    )
    // it planned afresh once the other was done: the lab was on vxlan by then
    expect(waited.stdout).toMatch(/already flannel-vxlan: every node holds its state, nothing to change/)
    expect(existsSync(lockFile)).toBe(false)
    await expectAllPodsReachable(lab.get())
    await expectReported(lab.get(), 'flannel-vxlan')
  })

  it('an inventory file: the lock is FILE.lock beside it; a live holder refuses the change, nothing changed, its lock left alone', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lk-inv-'))
    const holder = spawn('sleep', ['60'])
    try {
      const file = path.join(dir, 'cluster.yaml')
      const inv = parse(readFileSync(lab.get().inventory, 'utf8'))
      inv.cluster.source = 'file'
      writeFileSync(file, stringify(inv))
      const lock = JSON.stringify({
        host: hostname(),
        pid: holder.pid,
        user: 'carol',
        since: '2026-12-04T11:00:00.000Z',
        command: 'backend set flannel-host-gw',
      })
      writeFileSync(`${file}.lock`, lock)
      const before = await kernelOfLab(lab.get())
      const r = await netctl(['backend', 'set', 'flannel-host-gw', '--inventory', file, '--yes'])
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr.trim()).toBe(
        `netctl: refused: the cluster of ${file} is being changed by carol@${hostname()} (pid ${holder.pid}, netctl backend set flannel-host-gw) since 2026-12-04T11:00:00.000Z; retry later or pass --lock-timeout to wait; if that run is gone, remove ${file}.lock`,
      )
      expect(await kernelOfLab(lab.get())).toEqual(before)
      expect(readFileSync(`${file}.lock`, 'utf8')).toBe(lock)
      // the same with --json: the error object, exit 4
      const j = await netctl(['backend', 'set', 'flannel-host-gw', '--inventory', file, '--yes', '--json'])
      expect(j.code).toBe(4)
      expect(JSON.parse(j.stdout).error).toMatchObject({code: 'LOCKED'})
    } finally {
      holder.kill()
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
