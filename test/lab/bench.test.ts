import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {readlink} from 'node:fs/promises'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {benchLabName} from '../../src/lab/bench.js'
import {addNetns, listNetns} from '../../src/lab/netns-setup.js'
import {defaultStateRoot} from '../../src/lab/topology.js'
import {LAB_BACKENDS} from '../../src/lab/types.js'
import {run} from '../../src/util/exec.js'
import {validatorFor} from '../../src/util/schema.js'
import {BIN, netctl, netctlJson} from '../helpers/cli.js'
import {describeLab, uniqueLabName} from '../helpers/lab.js'

/** Namespaces and state directories of every lab a bench named NAME made (NAME-<backend>). */
async function leftovers(name: string): Promise<string[]> {
  const namespaces = (await listNetns()).filter((ns) => ns.startsWith(`${name}-`))
  const dirs = ['f-vxlan', 'f-host-gw', 'f-udp', 'c-bgp', 'c-rr', 'c-vxlan']
    .map((s) => path.join(defaultStateRoot(), `${name}-${s}`))
    .filter((d) => existsSync(d))
  return [...namespaces, ...dirs]
}

/** A bench names its labs NAME-<backend>: NAME leaves room for the longest (a lab name is at most 24). */
const BENCH_NAME = 24 - Math.max(...LAB_BACKENDS.map((b) => benchLabName('', b).length))

async function iperf3Pids(): Promise<string[]> {
  return (await run('pgrep', ['-x', 'iperf3'])).stdout.split('\n').filter(Boolean)
}

/**
 * iperf3 processes of this bench still running: in a namespace of its labs,
 * or new since `before` and in a namespace that no longer has a name (a lab
 * namespace deleted under a process that survived it).
 */
async function iperf3Left(name: string, before: string[]): Promise<string[]> {
  const rootNet = await readlink('/proc/self/ns/net')
  const ours: string[] = []
  for (const pid of await iperf3Pids()) {
    const ns = (await run('ip', ['netns', 'identify', pid])).stdout.trim()
    const net = await readlink(`/proc/${pid}/ns/net`).catch(() => rootNet)
    if (ns.startsWith(`${name}-`) || (ns === '' && net !== rootNet && !before.includes(pid)))
      ours.push(`${pid} in ${ns || net}`)
  }
  return ours
}

describeLab('lab bench', () => {
  it('measures two backends side by side with real numbers, prints them as the schema says, and leaves nothing behind', async () => {
    const name = uniqueLabName('bnc', BENCH_NAME)
    const before = await iperf3Pids()
    try {
      const r = await netctlJson([
        'lab',
        'bench',
        '--backends',
        'flannel-vxlan,flannel-host-gw',
        '--seconds',
        '1',
        '--ping-count',
        '20',
        '--rounds',
        '2',
        '--name',
        name,
      ])
      expect(r.code, r.stderr).toBe(0)
      const validate = validatorFor('lab-bench')
      expect(validate(r.json), JSON.stringify(validate.errors)).toBe(true)
      expect(r.stderr).toBe('') // progress goes to a terminal only
      const {results} = r.json
      expect(results.map((b: any) => b.backend)).toEqual(['flannel-vxlan', 'flannel-host-gw'])
      expect(results.map((b: any) => b.lab)).toEqual([`${name}-f-vxlan`, `${name}-f-host-gw`])
      for (const b of results) {
        expect(b.status, b.error).toBe('ok')
        const {sameNode, crossNode} = b
        expect(sameNode.from.node).toBe(sameNode.to.node)
        expect(crossNode.from.node).not.toBe(crossNode.to.node)
        for (const pair of [sameNode, crossNode]) {
          // two rounds: the reported round is the lower middle one, i.e. a real round, never an average
          expect(pair.rounds).toHaveLength(2)
          expect(pair.throughput.bitsPerSecond).toBe(Math.min(...pair.rounds.map((x: any) => x.bitsPerSecond)))
          expect(pair.latency.rttMs.avg).toBe(Math.min(...pair.rounds.map((x: any) => x.rttAvgMs)))
          expect(pair.throughput.bitsPerSecond).toBeGreaterThan(0)
          expect(pair.throughput.bytes).toBeGreaterThan(0)
          expect(pair.latency.received).toBeGreaterThan(0)
          expect(pair.latency.received).toBeLessThanOrEqual(pair.latency.transmitted)
          expect(pair.latency.rttMs.avg).toBeGreaterThan(0)
          expect(pair.latency.rttMs.min).toBeLessThanOrEqual(pair.latency.rttMs.avg)
          expect(pair.latency.rttMs.avg).toBeLessThanOrEqual(pair.latency.rttMs.max)
          // the kernel's MSS for the connection fits inside the pod MTU read from the kernel
          expect(pair.throughput.tcpMSS).toBeLessThanOrEqual(b.mtu.pod - 40)
        }
        // ratios come from the measured numbers of this run
        expect(b.ratio.throughput).toBeCloseTo(
          crossNode.throughput.bitsPerSecond / sameNode.throughput.bitsPerSecond,
          2,
        )
        expect(b.ratio.latency).toBeCloseTo(crossNode.latency.rttMs.avg / sameNode.latency.rttMs.avg, 2)
        // a DF packet of the pod's full MTU crossed nodes
        expect(b.mtu.path).toBe(b.mtu.pod)
      }
      const [vxlan, hostgw] = results
      // the backends' signatures, as read from the kernel: vxlan pays 50 bytes of headers, host-gw none
      expect(vxlan.mtu.pod).toBe(vxlan.mtu.underlay - 50)
      expect(hostgw.mtu.pod).toBe(hostgw.mtu.underlay)
      expect(vxlan.crossNode.throughput.tcpMSS).toBe(hostgw.crossNode.throughput.tcpMSS - 50)
    } finally {
      expect(await leftovers(name)).toEqual([])
      expect(await iperf3Left(name, before)).toEqual([])
    }
  })

  it('reports a backend whose lab cannot be built as failed, goes on with the next, and never removes a lab it did not make', async () => {
    const name = uniqueLabName('bnc', BENCH_NAME)
    const foreign = `${name}-f-udp.fabric`
    await addNetns(foreign) // someone else's lab already holds the name the bench wants for flannel-udp
    try {
      const r = await netctlJson([
        'lab',
        'bench',
        '--backends',
        'flannel-udp,flannel-vxlan',
        '--seconds',
        '1',
        '--ping-count',
        '5',
        '--rounds',
        '1',
        '--name',
        name,
      ])
      expect(r.code).toBe(1)
      expect(validatorFor('lab-bench')(r.json)).toBe(true)
      const [udp, vxlan] = r.json.results
      expect(udp.status).toBe('failed')
      expect(udp.error).toMatch(/already exists/)
      expect(udp.error.split('\n')).toHaveLength(1)
      expect(udp.ratio).toBeUndefined()
      expect(vxlan.status).toBe('ok')
      expect(vxlan.crossNode.throughput.bitsPerSecond).toBeGreaterThan(0)
      expect(await listNetns()).toContain(foreign)

      const text = await netctl([
        'lab',
        'bench',
        '--backends',
        'flannel-udp',
        '--seconds',
        '1',
        '--ping-count',
        '5',
        '--rounds',
        '1',
        '--name',
        name,
      ])
      expect(text.code).toBe(1)
      expect(text.stdout).toMatch(/^flannel-udp +failed: a lab named '.*-f-udp' already exists/m)
      expect(await listNetns()).toContain(foreign)
    } finally {
      await run('ip', ['netns', 'delete', foreign])
      expect(await leftovers(name)).toEqual([])
    }
  })

  it('takes its lab down on SIGINT, while the lab is being built or measured, and exits 130', async () => {
    const name = uniqueLabName('bnc', BENCH_NAME)
    const before = await iperf3Pids()
    const {NODE_ENV: _testEnv, ...env} = process.env
    const child = spawn(
      process.execPath,
      [BIN, 'lab', 'bench', '--backends', 'flannel-vxlan', '--seconds', '30', '--name', name],
      {env, stdio: ['ignore', 'pipe', 'pipe']},
    )
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    try {
      // wait until the lab exists (bounded; the test does not measure time)
      let seen = false
      for (let i = 0; i < 300 && !seen; i++) {
        seen = (await listNetns()).some((ns) => ns.startsWith(`${name}-f-vxlan.`))
        if (!seen) await new Promise((r) => setTimeout(r, 100))
      }
      expect(seen).toBe(true)
      child.kill('SIGINT')
      expect(await exited).toBe(130)
      expect(stderr).toMatch(new RegExp(`SIGINT: stopping the bench, removing lab ${name}-f-vxlan`))
      expect(await leftovers(name)).toEqual([])
      expect(await iperf3Left(name, before)).toEqual([])
    } finally {
      child.kill('SIGKILL')
      await netctl(['lab', 'down', '--name', `${name}-f-vxlan`])
    }
  })
})

describe('lab bench: usage', () => {
  it('refuses an unknown backend and a name too long for its labs, in one line with exit 2', async () => {
    const a = await netctl(['lab', 'bench', '--backends', 'flannel-vxlan,weave'])
    expect(a.code).toBe(2)
    expect(a.stderr).toMatch(/^netctl: --backends: unknown backend 'weave': one of flannel-vxlan, /)
    const b = await netctlJson(['lab', 'bench', '--name', 'a-rather-long-bench-name'])
    expect(b.code).toBe(2)
    expect(validatorFor('error')(b.json)).toBe(true)
    expect(b.json.error.message).toMatch(/--name 'a-rather-long-bench-name'.*a-rather-long-bench-name-f-host-gw/)
  })
})
