import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {synthesize, synthesizeSnapshot, writeSynthetic} from '../../../bench/synth.js'
import {peerEntries} from '../../../src/analyze/checks/facts.js'
import {
  factsMakerFor,
  runChecks,
  runChecksByNode,
  runChecksOnePass,
  runChecksStreamed,
} from '../../../src/analyze/checks/index.js'
import type {NodeState} from '../../../src/model/node-state.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {openSnapshotFile, writeSnapshotFile} from '../../../src/model/snapshot-file.js'
import {checkSnapshotFile} from '../../../src/services/check.js'
import {runChecksInWorkers, shareOut} from '../../../src/services/check-workers.js'
import {snapshotFixture} from '../../helpers/fixtures.js'

const FIXTURES = readdirSync(path.resolve('fixtures/snapshots'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''))

const dir = mkdtempSync(path.join(tmpdir(), 'netctl-streamed-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** check --snapshot's way: the file written as version 2 (a line per node), read twice, node by node */
async function fromFile(s: Snapshot, name: string, nodes?: string[]) {
  const file = path.join(dir, `${name}.jsonl`)
  await writeSnapshotFile(file, s)
  const {head, states} = await openSnapshotFile(file)
  return runChecksStreamed(head, states, nodes ? {nodes} : {})
}

/** as collect writes it now (each node's facts, then the states, the index in the head): read once */
async function fromIndexedFile(s: Snapshot, name: string, nodes?: string[]) {
  const file = path.join(dir, `${name}.indexed.jsonl.gz`)
  await writeSnapshotFile(file, s, factsMakerFor(s.cluster))
  const {head, indexed} = await openSnapshotFile(file)
  expect(indexed?.factsKey).toBe(factsMakerFor(s.cluster).key)
  return runChecksOnePass(head, indexed!.lines, nodes ? {nodes} : {})
}

/**
 * check --snapshot's way on a big file, forced on a small one: written with facts and index (plain:
 * the workers read their lines at offsets), the states shared out among this thread and workers
 */
async function fromWorkers(s: Snapshot, name: string, nodes?: string[], threads = 2) {
  const file = path.join(dir, `${name}.workers.jsonl`)
  await writeSnapshotFile(file, s, factsMakerFor(s.cluster))
  const {head, indexed} = await openSnapshotFile(file)
  return runChecksInWorkers(file, head, indexed!, nodes ? {nodes} : {}, threads)
}

describe('check node by node (cluster facts, one state at a time) finds what the checks over the whole snapshot find', () => {
  for (const name of FIXTURES) {
    it(`${name}: the same findings in the same order, from memory and from a JSON Lines file, whole and scoped to a node`, async () => {
      const s = snapshotFixture(name)
      const whole = runChecks(s)
      expect(runChecksByNode(s).raised.map((r) => r.finding)).toEqual(whole)
      expect((await fromFile(s, name)).raised.map((r) => r.finding)).toEqual(whole)
      expect((await fromIndexedFile(s, name)).raised.map((r) => r.finding)).toEqual(whole)
      expect((await fromWorkers(s, name)).raised.map((r) => r.finding)).toEqual(whole)
      const first = s.nodes[0]!.name
      expect(runChecksByNode(s, {nodes: [first]}).raised.map((r) => r.finding)).toEqual(runChecks(s, {nodes: [first]}))
      expect((await fromWorkers(s, name, [first])).raised.map((r) => r.finding)).toEqual(runChecks(s, {nodes: [first]}))
    })
  }

  for (const lab of ['flannel-vxlan-lab', 'flannel-host-gw-lab', 'calico-bgp-lab']) {
    it(`${lab} grown to 50 nodes, with faults on some of them: the same findings`, async () => {
      const s = synthesizeSnapshot(snapshotFixture(lab), 50)
      // a lost FDB entry, a stale route and a removed peer route: per-node checks with their peers' facts
      const n3 = s.nodeStates.node3!
      n3.fdb = n3.fdb.slice(1)
      n3.routes = n3.routes.filter((_, i) => i % 7 !== 3)
      s.nodeStates.node9!.neighbours = s.nodeStates.node9!.neighbours.slice(2)
      const whole = runChecks(s)
      expect(whole.length).toBeGreaterThan(0)
      expect(runChecksByNode(s).raised.map((r) => r.finding)).toEqual(whole)
      expect((await fromFile(s, `${lab}-50`)).raised.map((r) => r.finding)).toEqual(whole)
      expect((await fromIndexedFile(s, `${lab}-50`)).raised.map((r) => r.finding)).toEqual(whole)
      // this thread and two workers: three shares merged
      const workers = await fromWorkers(s, `${lab}-50`, undefined, 3)
      expect(workers.raised.map((r) => r.finding)).toEqual(whole)
      expect(workers.visits).toBe(50)
    })
  }
})

describe('check in worker threads', () => {
  it('shares the state lines out by bytes, in line order, every node in one share', () => {
    const nodes: Array<[string, number, number]> = [100, 100, 100, 100, 400, 100, 100].map((b, i) => [`n${i}`, 1, b])
    expect(shareOut(nodes, 2)).toEqual([
      [0, 5],
      [5, 7],
    ])
    expect(shareOut(nodes, 3)).toEqual([
      [0, 4],
      [4, 5],
      [5, 7],
    ])
    expect(shareOut(nodes.slice(0, 1), 4)).toEqual([[0, 1]])
    // the first thread's other work, counted as bytes: its share is lighter by them
    expect(shareOut(nodes, 2, 400)).toEqual([
      [0, 3],
      [3, 7],
    ])
    expect(shareOut(nodes, 2, 0)).toEqual(shareOut(nodes, 2))
  })

  it('a share of the state lines is read at its offsets: each node its own line, an empty share nothing', async () => {
    const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 6)
    const file = path.join(dir, 'shares.jsonl')
    await writeSnapshotFile(file, s, factsMakerFor(s.cluster))
    const {indexed} = await openSnapshotFile(file)
    const read = async (from: number, to: number) => {
      const out: string[] = []
      for await (const e of indexed!.statesAt(from, to)) {
        expect(e.state).toEqual(s.nodeStates[e.node])
        out.push(e.node)
      }
      return out
    }
    expect(await read(2, 5)).toEqual(['node3', 'node4', 'node5'])
    expect(await read(5, 6)).toEqual(['node6'])
    expect(await read(3, 3)).toEqual([])
  })

  it('a big file (forced on a small one) is checked in workers, with the report of the check in one thread', async () => {
    const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 24)
    // node20 loses its FDB entry for one peer's VTEP
    const fdb = s.nodeStates.node20!.fdb
    fdb.splice(
      fdb.findIndex((e) => e.dev === 'flannel.1'),
      1,
    )
    const file = path.join(dir, 'cli-workers.jsonl')
    await writeSnapshotFile(file, s, factsMakerFor(s.cluster))
    const one = await checkSnapshotFile(file, undefined, {workers: 1})
    const many = await checkSnapshotFile(file, undefined, {minBytes: 0})
    expect(one.workers).toBe(0)
    expect(many.workers).toBe(Math.min(availableParallelism(), 2))
    expect(many.result).toEqual(one.result)
    expect(one.result.findings.some((f) => f.code === 'FDB_MISSING' && f.node === 'node20')).toBe(true)
    // by default a file this small stays in-process
    expect((await checkSnapshotFile(file, undefined)).workers).toBe(0)
  })

  it('a bad state line in a later share, or a bad facts line, is refused with the line the one-thread read names', async () => {
    const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 12)
    const file = path.join(dir, 'bad-share.jsonl')
    await writeSnapshotFile(file, s, factsMakerFor(s.cluster))
    const lines = readFileSync(file, 'utf8').split('\n')
    // node11's state (line 1 + 12 facts + 11): a boolean made a string of the same length, the offsets kept
    expect(lines[23]).toContain('"node":"node11"')
    lines[23] = lines[23]!.replace('"onlink":false', '"onlink":"fal"')
    writeFileSync(file, lines.join('\n'))
    const error = (p: Promise<unknown>) =>
      p.then(
        () => 'no error',
        (e: Error) => e.message,
      )
    const one = await error(checkSnapshotFile(file, undefined, {workers: 1}))
    expect(one).toMatch(/bad-share\.jsonl:24: invalid snapshot: nodeStates\["node11"\]\.routes\[\d+\]\.onlink/)
    const {head, indexed} = await openSnapshotFile(file)
    expect(await error(runChecksInWorkers(file, head, indexed!, {}, 2))).toBe(one)
    // a bad facts line (node3's: line 4) is the main thread's to report, the workers stopped
    lines[23] = lines[23]!.replace('"onlink":"fal"', '"onlink":false')
    expect(lines[3]).toContain('"node":"node3","facts"')
    // a number made a string of the same length
    lines[3] = lines[3]!.replace(/"mtu":(\d\d)\d\d,/, '"mtu":"$1",')
    writeFileSync(file, lines.join('\n'))
    const factsError = await error(checkSnapshotFile(file, undefined, {workers: 1}))
    expect(factsError).toMatch(/bad-share\.jsonl:4: invalid snapshot: facts\["node3"\]/)
    const again = await openSnapshotFile(file)
    expect(await error(runChecksInWorkers(file, again.head, again.indexed!, {}, 2))).toBe(factsError)
  })
})

describe('check node by node holds cluster facts that do not grow with the cluster, and one whole state at a time', () => {
  for (const lab of ['flannel-vxlan-lab', 'flannel-host-gw-lab', 'calico-bgp-lab']) {
    it(`${lab} at 16 and 48 nodes: the facts kept per node have the same per-peer entries; each state is visited once`, () => {
      const kept = (n: number): {perNode: number; visits: number; whole: number} => {
        const s = synthesizeSnapshot(snapshotFixture(lab), n)
        const run = runChecksByNode(s)
        const facts = Object.values(run.facts.nodeStates)
        const whole = Object.values(s.nodeStates).reduce((a, st: NodeState) => a + peerEntries(st), 0) / n
        return {perNode: facts.reduce((a, st) => a + peerEntries(st), 0) / facts.length, visits: run.visits, whole}
      }
      const small = kept(16)
      const big = kept(48)
      // a whole state holds entries per peer (at least one more per node added): the facts do not
      expect(big.whole - small.whole).toBeGreaterThanOrEqual(48 - 16)
      expect(big.perNode).toBe(small.perNode)
      expect([small.visits, big.visits]).toEqual([16, 48])
    })
  }

  it('a file is read in two passes, each holding one line (one node) at a time', async () => {
    const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 20)
    const file = path.join(dir, 'passes.jsonl')
    await writeSnapshotFile(file, s)
    const {head, states} = await openSnapshotFile(file)
    let passes = 0
    let live = 0
    let most = 0
    const counted = async function* () {
      passes++
      for await (const e of states()) {
        live++
        most = Math.max(most, live)
        yield e
        live--
      }
    }
    const run = await runChecksStreamed(head, counted)
    expect(run.raised.map((r) => r.finding)).toEqual(runChecks(s))
    expect({passes, most}).toEqual({passes: 2, most: 1})
  })

  for (const lab of ['flannel-vxlan-lab', 'calico-bgp-lab']) {
    it(`${lab} at 30 nodes, written as the generator and collect write it: check parses every line once, and finds the same`, async () => {
      const g = synthesize(snapshotFixture(lab), 30)
      const file = path.join(dir, `${lab}-once.jsonl`)
      await writeSynthetic(g, file)
      const parses: string[] = []
      const run = await checkSnapshotFile(file, undefined, {
        onParse: (what, node) => parses.push(`${what} ${node ?? ''}`),
      })
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n').length
      // the head, each node's facts line and each node's state line: each parsed once, and no more lines than that
      expect(lines).toBe(1 + 2 * 30)
      expect(parses.length).toBe(lines)
      expect(new Set(parses).size).toBe(parses.length)
      expect(parses.filter((p) => p.startsWith('state ')).sort()).toEqual(g.names.map((n) => `state ${n}`).sort())
      // the same report as the two passes over the same cluster written without facts, and as the checks over it whole
      const plain = path.join(dir, `${lab}-twice.jsonl`)
      const s = synthesizeSnapshot(snapshotFixture(lab), 30)
      await writeSnapshotFile(plain, s)
      const twice = await checkSnapshotFile(plain, undefined)
      expect(run.result.findings).toEqual(twice.result.findings)
      expect(run.result.findings.map((f) => f.code)).toEqual(runChecks(s).map((f) => f.code))
    })
  }
})
