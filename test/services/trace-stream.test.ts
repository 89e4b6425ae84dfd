import {mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {synthesizeSnapshot} from '../../bench/synth.js'
import {factsMakerFor, runChecks} from '../../src/analyze/checks/index.js'
import type {Snapshot} from '../../src/model/snapshot.js'
import {writeSnapshotFile} from '../../src/model/snapshot-file.js'
import {traceSnapshotFile, traceSnapshotStream} from '../../src/services/trace.js'
import {snapshotFixture} from '../helpers/fixtures.js'

const dir = mkdtempSync(path.join(tmpdir(), 'netctl-trace-stream-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const query = (src: string, dst: string) => ({src, dst, size: 84, df: false})

/** The first pod of each node to the first pod of every node (itself included), and to a node. */
function pairs(s: Snapshot): Array<[string, string]> {
  const firsts = s.nodes.flatMap((n) => {
    const p = s.pods.find((x) => x.node === n.name && !x.hostNetwork)
    return p ? [`${p.namespace}/${p.name}`] : []
  })
  return [...firsts.flatMap((a) => firsts.map((b): [string, string] => [a, b])), [firsts[0]!, s.nodes.at(-1)!.name]]
}

describe('trace on a JSON Lines snapshot keeps only the states its walk needs, and answers as over the whole snapshot', () => {
  const fixtures = readdirSync(path.resolve('fixtures/snapshots'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.replace(/\.json$/, ''))
  for (const name of fixtures) {
    it(`${name}: every pair of nodes' pods (and a pod to a node), the same trace, findings, checks and exit code`, async () => {
      const s = snapshotFixture(name)
      const file = path.join(dir, `${name}.jsonl`)
      await writeSnapshotFile(file, s)
      // as collect writes it: each node's facts, then the states, the index in the head (plain and gzipped)
      const indexed = path.join(dir, `${name}.indexed.jsonl`)
      await writeSnapshotFile(indexed, s, factsMakerFor(s.cluster))
      await writeSnapshotFile(`${indexed}.gz`, s, factsMakerFor(s.cluster))
      for (const [src, dst] of pairs(s)) {
        const whole = traceSnapshotFile(s, query(src, dst))
        for (const f of [file, indexed, `${indexed}.gz`]) {
          const streamed = await traceSnapshotStream(f, query(src, dst))
          expect({trace: streamed.trace, exit: streamed.exitCode}, `${f}: ${src} → ${dst}`).toEqual({
            trace: whole.trace,
            exit: whole.exitCode,
          })
        }
      }
    })
  }

  it('a 40-node cluster: the walk keeps the states of the path only, the checks the cluster facts of the others', async () => {
    const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 40)
    // node3 loses its FDB entry for node17: the trace names it (FDB_MISSING) from node17's facts
    const ip17 = s.nodes.find((n) => n.name === 'node17')!.internalIP
    s.nodeStates.node3!.fdb = s.nodeStates.node3!.fdb.filter((f) => f.dst !== ip17)
    const file = path.join(dir, 'forty.jsonl')
    await writeSnapshotFile(file, s)
    const whole = traceSnapshotFile(s, query('pod-node3-1', 'pod-node17-2'))
    const streamed = await traceSnapshotStream(file, query('pod-node3-1', 'pod-node17-2'))
    expect(streamed.trace).toEqual(whole.trace)
    expect(Object.keys(streamed.snapshot.nodeStates).sort()).toEqual(['node17', 'node3'])
    expect(streamed.trace.findings.map((f) => f.code)).toContain('FDB_MISSING')
  })

  it('a 40-node cluster as collect writes it: trace parses the head, the facts lines and the states of its path, no other state', async () => {
    const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 40)
    const ip17 = s.nodes.find((n) => n.name === 'node17')!.internalIP
    s.nodeStates.node3!.fdb = s.nodeStates.node3!.fdb.filter((f) => f.dst !== ip17)
    const whole = traceSnapshotFile(s, query('pod-node3-1', 'pod-node17-2'))
    for (const file of [path.join(dir, 'forty.indexed.jsonl'), path.join(dir, 'forty.indexed.jsonl.gz')]) {
      await writeSnapshotFile(file, s, factsMakerFor(s.cluster))
      const parsed: string[] = []
      const streamed = await traceSnapshotStream(file, query('pod-node3-1', 'pod-node17-2'), undefined, {
        onParse: (what, node) => parsed.push(what === 'head' ? 'head' : `${what} ${node}`),
      })
      expect(streamed.trace).toEqual(whole.trace)
      expect(parsed.filter((p) => p.startsWith('state ')).sort()).toEqual(['state node17', 'state node3'])
      expect(parsed.filter((p) => p.startsWith('facts ')).length).toBe(40)
      expect(parsed.length).toBe(1 + 40 + 2)
    }
  })

  it('a second trace over the same file parses only the states of its path; a file written again is read again', async () => {
    const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 40)
    const file = path.join(dir, 'again.indexed.jsonl')
    await writeSnapshotFile(file, s, factsMakerFor(s.cluster))
    const parsed: string[] = []
    const onParse = (what: string, node?: string) => parsed.push(what === 'head' ? 'head' : `${what} ${node}`)
    const first = await traceSnapshotStream(file, query('pod-node3-1', 'pod-node17-2'), undefined, {onParse})
    expect(parsed.length).toBe(1 + 40 + 2)
    parsed.length = 0
    const second = await traceSnapshotStream(file, query('pod-node5-1', 'pod-node9-1'), undefined, {onParse})
    // nothing proportional to the cluster's nodes is read again: the head and the 40 facts lines are kept
    expect(parsed.sort()).toEqual(['state node5', 'state node9'])
    expect(second.trace).toEqual(traceSnapshotFile(s, query('pod-node5-1', 'pod-node9-1')).trace)
    expect(first.trace).toEqual(traceSnapshotFile(s, query('pod-node3-1', 'pod-node17-2')).trace)
    // the file changes (node5 loses its FDB entry for node9): read again, and the trace says so
    const ip9 = s.nodes.find((n) => n.name === 'node9')!.internalIP
    s.nodeStates.node5!.fdb = s.nodeStates.node5!.fdb.filter((f) => f.dst !== ip9)
    await writeSnapshotFile(file, s, factsMakerFor(s.cluster))
    parsed.length = 0
    const third = await traceSnapshotStream(file, query('pod-node5-1', 'pod-node9-1'), undefined, {onParse})
    expect(parsed.length).toBe(1 + 40 + 2)
    expect(third.trace).toEqual(traceSnapshotFile(s, query('pod-node5-1', 'pod-node9-1')).trace)
    expect(third.trace.findings.map((f) => f.code)).toContain('FDB_MISSING')
  })

  it('a state line the schema refuses is refused by every trace that reads it, also over the kept file', async () => {
    const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 20)
    // a route through the tunnel (not among the node's facts) whose destination is no text
    const bad = s.nodeStates.node9!.routes.find((r) => r.dev === 'flannel.1')!
    ;(bad as unknown as {dst: unknown}).dst = 42
    const file = path.join(dir, 'refused.indexed.jsonl')
    await writeSnapshotFile(file, s, factsMakerFor(s.cluster))
    const ok = await traceSnapshotStream(file, query('pod-node3-1', 'pod-node17-2'))
    expect(ok.trace.disposition).toBe('DELIVERED')
    for (let i = 0; i < 2; i++)
      await expect(traceSnapshotStream(file, query('pod-node5-1', 'pod-node9-1'))).rejects.toThrow(
        /invalid snapshot: nodeStates\["node9"\]\.routes\[\d+\]/,
      )
  })

  /**
   * Faults that concern the path, in a 30-node cluster as collect writes it (facts, index) and as a
   * plain file: the trace (findings, checks that ran, exit code) is the same as over the whole
   * snapshot, and each fault's finding is there, as the full sweep raises it.
   */
  // exit: 1 for an error finding, 0 for a warning (the packet is delivered either way)
  const faults: Array<{name: string; code: string; node?: string; exit: number; make(s: Snapshot): void}> = [
    {
      name: 'IPv4 forwarding off on the destination node',
      code: 'IP_FORWARD_DISABLED',
      node: 'node17',
      exit: 1,
      make: (s) => {
        s.nodeStates.node17!.sysctls['net.ipv4.ip_forward'] = '0'
      },
    },
    {
      name: "a node off the path given the source node's podCIDR",
      code: 'PODCIDR_DUPLICATE',
      exit: 1,
      make: (s) => {
        s.nodes.find((n) => n.name === 'node25')!.podCIDRs = [...s.nodes.find((n) => n.name === 'node3')!.podCIDRs]
      },
    },
    {
      name: 'a route left on the source node for a pod subnet no node holds any more',
      code: 'ROUTE_STALE',
      node: 'node3',
      exit: 0,
      make: (s) => {
        const toPeer = s.nodeStates.node3!.routes.find((r) => r.dev === 'flannel.1' && r.dst.endsWith('/24'))!
        s.nodeStates.node3!.routes.push({...toPeer, dst: '172.20.250.0/24', gateway: '172.20.250.0'})
      },
    },
    {
      name: 'the source node has no FDB entry for a peer off the path',
      code: 'FDB_MISSING',
      node: 'node3',
      exit: 1,
      make: (s) => {
        const ip = s.nodes.find((n) => n.name === 'node29')!.internalIP
        s.nodeStates.node3!.fdb = s.nodeStates.node3!.fdb.filter((f) => f.dst !== ip)
      },
    },
  ]
  for (const fault of faults) {
    it(`a fault on the path, ${fault.name}: the same trace and exit code as over the whole snapshot, with ${fault.code}`, async () => {
      const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 30)
      fault.make(s)
      const sweep = runChecks(s).filter((f) => f.code === fault.code)
      expect(sweep.length).toBeGreaterThan(0)
      const whole = traceSnapshotFile(s, query('pod-node3-1', 'pod-node17-2'))
      const raised = whole.trace.findings.filter((f) => f.code === fault.code)
      expect(raised.length).toBeGreaterThan(0)
      if (fault.node) expect(raised.map((f) => f.node)).toContain(fault.node)
      expect(whole.exitCode).toBe(fault.exit)
      const plain = path.join(dir, `fault-${fault.code}.jsonl`)
      const indexed = path.join(dir, `fault-${fault.code}.indexed.jsonl`)
      await writeSnapshotFile(plain, s)
      await writeSnapshotFile(indexed, s, factsMakerFor(s.cluster))
      for (const file of [plain, indexed]) {
        const streamed = await traceSnapshotStream(file, query('pod-node3-1', 'pod-node17-2'))
        expect({trace: streamed.trace, exit: streamed.exitCode}, file).toEqual({
          trace: whole.trace,
          exit: whole.exitCode,
        })
      }
    })
  }
})
