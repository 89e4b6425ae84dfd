/**
 * Break a flannel vxlan lab for real, one fault at a time, re-collect, and
 * check that the walk stops where the kernel drops the packet, for the
 * reason the kernel drops it, and agrees with ping on every pod pair.
 */
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {expect, it} from 'vitest'

import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import type {Trace} from '../../../src/model/trace.js'
import {describeLab, type LabUp, nsExec, nsRun, useLab} from '../../helpers/lab.js'
import {type LabFault, labFaults, withLabFault} from '../../helpers/lab-faults.js'
import {collectLab, disagreements, pingPairs} from './oracle.js'

const LONG = 300_000
type Node = LabUp['nodes'][0]

const sh = async (netns: string, ...argv: string[]): Promise<void> => {
  await nsRun(netns, ...argv)
}

/** Apply a fault, collect, compare every pair with ping, undo the fault (also when the checks fail). */
async function withFault(
  l: LabUp,
  fault: LabFault,
  check: (snap: Snapshot, trace: (a: string, b: string) => Trace) => void,
): Promise<void> {
  await withLabFault(fault, async () => {
    const snap = await collectLab(l.name)
    const results = await pingPairs(l.pods, (a, b) =>
      traceSnapshot(snap, {src: a, dst: b, protocol: 'icmp', size: 84, df: true}),
    )
    expect(disagreements(results)).toEqual([])
    expect(results.some((r) => !r.kernel)).toBe(true)
    check(snap, (a, b) => results.find((r) => r.src.name === a && r.dst.name === b)!.result.trace)
  })
}

describeLab('trace walker: a flannel vxlan lab broken for real', () => {
  const lab = useLab('trc', ['--backend', 'flannel-vxlan', '--nodes', '3', '--pods-per-node', '1'])
  const parts = () => {
    const l = lab.get()
    const [n1, n2] = l.nodes as [Node, Node]
    const pod = (n: Node) => l.pods.find((p) => p.node === n.name)!
    return {l, n1, n2, p1: pod(n1), p2: pod(n2)}
  }

  it(
    'an FDB entry deleted: FDB_MISS where node1 encapsulates for node2',
    async () => {
      const {l, n1, n2, p1, p2} = parts()
      await withFault(l, labFaults.fdbDeleted(n1, n2), (_snap, trace) => {
        const t = trace(p1.name, p2.name)
        expect(t.disposition).toBe('FDB_MISS')
        expect(t.hops.at(-1)).toMatchObject({
          node: n1.name,
          out: 'flannel.1',
          action: 'drop',
          findings: ['FDB_MISSING'],
        })
        expect(t.findings.find((f) => f.code === 'FDB_MISSING')?.fix).toContain(
          `bridge fdb replace ${n2.vtepMAC} dev flannel.1 dst ${n2.ip} self permanent`,
        )
      })
    },
    LONG,
  )

  it(
    "the VTEP neighbour's lladdr changed to a wrong MAC: DECAP_REJECTED at node2",
    async () => {
      const {l, n1, n2, p1, p2} = parts()
      const wrong = '02:00:00:00:be:ef'
      await withFault(l, labFaults.vtepNeighbourWrong(n1, n2, wrong), (_snap, trace) => {
        const t = trace(p1.name, p2.name)
        expect(t.disposition).toBe('DECAP_REJECTED')
        expect(t.hops.at(-1)).toMatchObject({
          node: n2.name,
          in: 'eth0',
          action: 'drop',
          findings: ['VTEP_MAC_MISMATCH'],
        })
        expect(t.findings.find((f) => f.code === 'VTEP_MAC_MISMATCH')).toMatchObject({
          node: n1.name,
          message: expect.stringContaining(wrong),
        })
      })
    },
    LONG,
  )

  it(
    'iptables -I FORWARD -d <pod> -j DROP on node2: DENIED with the rule as evidence',
    async () => {
      const {l, n2, p1, p2} = parts()
      // inserted first (the walk agrees that appended it would never be reached)
      await withFault(l, labFaults.forwardDrop(n2, p2.ip), (_snap, trace) => {
        const t = trace(p1.name, p2.name)
        expect(t.disposition).toBe('DENIED')
        expect(t.hops.at(-1)).toMatchObject({
          node: n2.name,
          in: 'flannel.1',
          out: 'cni0',
          action: 'drop',
          findings: ['FIREWALL_DROP'],
        })
        expect(t.hops.at(-1)?.evidence).toContain(`-A FORWARD -d ${p2.ip}/32 -j DROP`)
        // the other way the request arrives; its reply is what the rule drops
        expect(trace(p2.name, p1.name)).toMatchObject({disposition: 'DELIVERED', returnPath: {disposition: 'DENIED'}})
      })
    },
    LONG,
  )

  it(
    'ip_forward=0 on node2: FORWARDING_DISABLED',
    async () => {
      const {l, n2, p1, p2} = parts()
      await withFault(l, labFaults.forwardingOff(n2), (_snap, trace) => {
        const t = trace(p1.name, p2.name)
        expect(t.disposition).toBe('FORWARDING_DISABLED')
        expect(t.hops.at(-1)).toMatchObject({node: n2.name, in: 'flannel.1', findings: ['IP_FORWARD_DISABLED']})
        expect(t.hops.at(-1)?.evidence).toContain('net.ipv4.ip_forward = 0')
      })
    },
    LONG,
  )

  it(
    'a blackhole route on node1: BLACKHOLE',
    async () => {
      const {l, n1, p1, p2} = parts()
      await withFault(l, labFaults.blackhole(n1, p2.ip), (_snap, trace) => {
        const t = trace(p1.name, p2.name)
        expect(t.disposition).toBe('BLACKHOLE')
        expect(t.hops.at(-2)).toMatchObject({
          node: n1.name,
          action: 'route',
          evidence: expect.arrayContaining([`blackhole ${p2.ip}`]),
        })
        expect(t.findings.map((f) => f.code)).toContain('BLACKHOLE_ROUTE')
      })
    },
    LONG,
  )

  it(
    "a FAILED neighbour entry for the pod's gateway is resolved again: the kernel pings through, the walk delivers",
    async () => {
      const {l, p1, p2} = parts()
      const gateway = `${l.nodes[0]!.podCIDR.split('.').slice(0, 3).join('.')}.1`
      await sh(p1.netns, 'ip', 'neigh', 'replace', gateway, 'dev', 'eth0', 'nud', 'failed')
      const snap = await collectLab(l.name)
      const t = traceSnapshot(snap, {src: p1.name, dst: p2.name, protocol: 'icmp', size: 84, df: true}).trace
      expect(t.hops[0]!.evidence).toContain(
        `${gateway} dev eth0 FAILED: the kernel resolves it again for the next packet`,
      )
      expect(t.disposition).toBe('DELIVERED')
      expect(await nsExec(p1.netns, ['ping', '-n', '-q', '-c', '1', '-W', '1', p2.ip]).then((r) => r.code)).toBe(0)
    },
    LONG,
  )

  it(
    'a DF packet bigger than the pod MTU (1450): MTU_EXCEEDED, as ping -M do finds',
    async () => {
      const {l, p1, p2} = parts()
      const snap = await collectLab(l.name)
      for (const size of [1450, 1451, 1500]) {
        const t = traceSnapshot(snap, {src: p1.name, dst: p2.name, protocol: 'icmp', size, df: true}).trace
        const r = await nsExec(p1.netns, [
          'ping',
          '-n',
          '-q',
          '-c',
          '1',
          '-W',
          '1',
          '-M',
          'do',
          '-s',
          String(size - 28),
          p2.ip,
        ])
        expect(t.disposition === 'DELIVERED', `${size} bytes: ${t.disposition}, ping exit ${r.code}`).toBe(r.code === 0)
        if (size > 1450)
          expect(t).toMatchObject({
            disposition: 'MTU_EXCEEDED',
            hops: [
              {netns: p1.netns, action: 'route'},
              {action: 'drop', out: 'eth0'},
            ],
          })
      }
      // without DF the kernel fragments: delivered
      expect(
        traceSnapshot(snap, {src: p1.name, dst: p2.name, protocol: 'icmp', size: 1500, df: false}).trace.disposition,
      ).toBe('DELIVERED')
    },
    LONG,
  )

  it(
    'a pod whose eth0 is bigger than flannel.1: MTU_EXCEEDED forwarding on node1, with MTU_MISMATCH',
    async () => {
      const {l, n1, p1, p2} = parts()
      const before = traceSnapshot(await collectLab(l.name), {
        src: p1.name,
        dst: p2.name,
        protocol: 'icmp',
        size: 84,
        df: true,
      }).trace
      const hostVeth = before.hops.find((h) => h.action === 'bridge')!.in as string
      const setMtu = async (mtu: number) => {
        await sh(p1.netns, 'ip', 'link', 'set', 'eth0', 'mtu', String(mtu))
        await sh(n1.netns, 'ip', 'link', 'set', hostVeth, 'mtu', String(mtu))
      }
      await setMtu(1500)
      try {
        const snap = await collectLab(l.name)
        const t = traceSnapshot(snap, {src: p1.name, dst: p2.name, protocol: 'icmp', size: 1500, df: true}).trace
        const r = await nsExec(p1.netns, ['ping', '-n', '-q', '-c', '1', '-W', '1', '-M', 'do', '-s', '1472', p2.ip])
        expect(r.code).not.toBe(0)
        expect(t.disposition).toBe('MTU_EXCEEDED')
        expect(t.hops.at(-1)).toMatchObject({
          node: n1.name,
          in: 'cni0',
          out: 'flannel.1',
          action: 'drop',
          findings: ['MTU_MISMATCH'],
        })
        expect(t.findings[0]!.fix).toContain('ip link set eth0 mtu 1450')
      } finally {
        await setMtu(1450)
      }
    },
    LONG,
  )
})

describeLab('trace walker: a flannel udp lab whose forwarder stops', () => {
  const lab = useLab('trc', ['--backend', 'flannel-udp', '--nodes', '3', '--pods-per-node', '1'])

  it(
    'ends in DECAP_REJECTED towards node2 and BLACKHOLE from node2, as ping finds',
    async () => {
      const l = lab.get()
      const [n1, n2] = l.nodes as [Node, Node]
      const pod = (n: Node) => l.pods.find((p) => p.node === n.name)!
      // the lab's own forwarder on node2, by the pid file the lab wrote for it
      const pid = Number(
        (await readFile(path.join(l.stateDir, 'nodes', n2.name, 'flannel-udp', 'forwarder.pid'), 'utf8')).trim(),
      )
      expect(pid).toBeGreaterThan(1)
      process.kill(pid, 'SIGTERM')
      for (let i = 0; i < 50 && (await nsExec(n2.netns, ['kill', '-0', String(pid)])).code === 0; i++)
        await new Promise((r) => setTimeout(r, 100))
      const snap = await collectLab(l.name)
      const results = await pingPairs(l.pods, (a, b) =>
        traceSnapshot(snap, {src: a, dst: b, protocol: 'icmp', size: 84, df: true}),
      )
      expect(disagreements(results)).toEqual([])
      const t = (a: Node, b: Node) =>
        results.find((r) => r.src.name === pod(a).name && r.dst.name === pod(b).name)!.result.trace
      expect(t(n1, n2)).toMatchObject({
        disposition: 'DECAP_REJECTED',
        findings: [{code: 'UDP_DAEMON_DOWN', node: n2.name}],
      })
      expect(t(n2, n1)).toMatchObject({disposition: 'BLACKHOLE', findings: [{code: 'UDP_DAEMON_DOWN', node: n2.name}]})
    },
    LONG,
  )
})
