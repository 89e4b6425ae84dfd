/**
 * The probe service with fake transports: what it runs where, and that a node
 * that cannot send is a note (verdict not-sent), never a failure of the trace.
 */
import {describe, expect, it} from 'vitest'

import type {InventoryNode} from '../../src/model/inventory.js'
import {probeTrace, sendCommand, sourceScript} from '../../src/services/probe.js'
import {traceSnapshotFile} from '../../src/services/trace.js'
import type {ExecOptions, Transport, TransportResult} from '../../src/transport/types.js'
import {fixture, snapshotFixture} from '../helpers/fixtures.js'

const snapshot = snapshotFixture('flannel-vxlan-routed-lab')
const nodes = snapshot.nodes as unknown as InventoryNode[]
const run = () =>
  traceSnapshotFile(snapshot, {src: 'pod-node1-1', dst: 'pod-node2-1', protocol: 'icmp', size: 84, df: false})

function fake(answer: (node: string, script: string) => TransportResult | Error) {
  const calls: Array<{node: string; script: string; opts?: ExecOptions}> = []
  const transportFor = (node: InventoryNode): Transport => ({
    target: node.name,
    async exec(script, opts) {
      calls.push({node: node.name, script, ...(opts ? {opts} : {})})
      const a = answer(node.name, script)
      if (a instanceof Error) throw a
      return a
    },
    async close() {},
  })
  return {calls, transportFor}
}

describe('trace --probe, the service', () => {
  it("sends from inside the source pod's netns on the source node only, and reads the other nodes before and after, within --timeout", async () => {
    const links = `--- netctl-probe-read links\n${fixture('trace-probe/flannel-vxlan-routed/healthy/node2-before.json')}`
    const f = fake((_n, script) => ({
      stdout: script.includes('nsenter')
        ? `${links}\n--- netctl-probe send\n3 packets transmitted, 3 received\n--- netctl-probe after\n${links}`
        : links,
      stderr: '',
      code: 0,
    }))
    const r = await probeTrace(run().trace, snapshot, nodes, {
      transportFor: f.transportFor,
      timeoutMs: 7000,
      version: 't',
    })
    const senders = f.calls.filter((c) => c.script.includes('ping'))
    expect(senders.map((c) => c.node)).toEqual(['node1'])
    expect(senders[0]!.script).toContain('nsenter --net=/var/run/netns/chk-vx-routed.node1.pod1 ping -n -q -c 3')
    expect(f.calls.filter((c) => c.node === 'node2')).toHaveLength(2)
    expect(f.calls.every((c) => c.opts?.timeoutMs === 7000)).toBe(true)
    expect(r.probe?.answered).toBe(3)
    expect(r.probe?.counters.some((c) => c.node === 'node2')).toBe(true)
    // node2's reads: the flow's conntrack entries after the send only (this snapshot has no iptables rules on the path)
    const [before, after] = f.calls.filter((c) => c.node === 'node2').map((c) => c.script)
    expect(before).not.toContain('conntrack -L')
    expect(after).toContain('conntrack -L -p icmp -s 172.20.1.2 -d 172.20.2.2 -o extended')
  })

  it('is a note, not a failure, when the source node has no ping', async () => {
    const before = run()
    const f = fake((_n, script) => ({
      stdout: script.includes('NOTOOLS') ? 'NOTOOLS ping\n' : '[]',
      stderr: '',
      code: 0,
    }))
    const r = await probeTrace(before.trace, snapshot, nodes, {
      transportFor: f.transportFor,
      timeoutMs: 5000,
      version: 't',
    })
    expect(r.probe).toMatchObject({verdict: 'not-sent', sent: 0, note: 'not sent: no ping on node1'})
    expect(r.findings).toEqual(before.trace.findings)
    expect(r.disposition).toBe(before.trace.disposition)
  })

  it('sends nothing to a Service DST (the real packet may take another endpoint than the walk shown)', async () => {
    const t = run().trace
    const f = fake(() => ({stdout: '[]', stderr: '', code: 0}))
    const r = await probeTrace({...t, service: {} as NonNullable<typeof t.service>}, snapshot, nodes, {
      transportFor: f.transportFor,
      timeoutMs: 5000,
      version: 't',
    })
    expect(r.probe?.verdict).toBe('not-sent')
    expect(r.probe?.note).toContain('Service')
    expect(f.calls).toEqual([])
  })

  it('is a note when the send does not finish in time', async () => {
    const f = fake((n) => (n === 'node1' ? new Error('timed out after 5s') : {stdout: '[]', stderr: '', code: 0}))
    const r = await probeTrace(run().trace, snapshot, nodes, {
      transportFor: f.transportFor,
      timeoutMs: 5000,
      version: 't',
    })
    expect(r.probe?.verdict).toBe('not-sent')
    expect(r.probe?.note).toContain('timed out')
  })
})

describe('what the probe sends', () => {
  const t = run().trace
  it('is the trace packet: ICMP of --size with --df, TCP connects and UDP datagrams to --port, a destination that is not an address refused', () => {
    expect(sendCommand({...t, packet: {...t.packet, size: 1400, df: true}}).argv).toBe(
      'ping -n -q -c 3 -i 0.2 -W 1 -s 1372 -M do -p 6e657463746c 172.20.2.2',
    )
    expect(sendCommand({...t, packet: {...t.packet, protocol: 'tcp', port: 8080}}).argv).toBe(
      'nc -v -n -z -w 2 172.20.2.2 8080',
    )
    expect(sendCommand({...t, packet: {...t.packet, protocol: 'udp', port: 53}}).argv).toBe(
      'printf netctl-probe | nc -u -n -w 1 172.20.2.2 53',
    )
    expect(() => sendCommand({...t, packet: {...t.packet, dst: '1.2.3.4; reboot'}})).toThrow(/not an IP/)
  })

  it('checks for its tools before sending, and reads the counters around the send in the same script', () => {
    const s = sourceScript(t, '/var/run/netns/x')
    expect(s.indexOf('command -v')).toBeLessThan(s.indexOf('ip -s -j link show'))
    expect(s.split('ip -s -j link show')).toHaveLength(3)
  })
})
