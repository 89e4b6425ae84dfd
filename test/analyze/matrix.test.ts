/**
 * The reachability matrix over recorded lab snapshots: every cell is what a
 * single trace of that pair says, a broken pair shows as exactly that cell,
 * and the differential matrix names the pair and the state that broke it.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {cellOf, type Matrix, matrixDiff, reachabilityMatrix} from '../../src/analyze/matrix.js'
import {traceSnapshot} from '../../src/analyze/trace/index.js'
import type {Snapshot} from '../../src/model/snapshot.js'
import {GRID_MAX, matrixText} from '../../src/render/matrix.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {snapshotFixture, snapshotFixturePath} from '../helpers/fixtures.js'

/** node1 loses its FDB entry for node2's VTEP (the oracle suite's first fault). */
function fdbDeleted(): {snap: Snapshot; line: string} {
  const snap = snapshotFixture('flannel-vxlan-lab')
  const n2 = snap.nodes.find((n) => n.name === 'node2')!
  const s1 = snap.nodeStates.node1!
  const gone = s1.fdb.find((e) => e.dev === 'flannel.1' && e.dst === n2.internalIP)!
  s1.fdb = s1.fdb.filter((e) => e !== gone)
  return {snap, line: `${gone.mac} dev flannel.1 dst ${n2.internalIP} self permanent`}
}

/** Each cell against the trace of its pair walked alone. */
function expectCellsAreTraces(snap: Snapshot, m: Matrix): void {
  const byId = new Map(m.endpoints.map((e) => [e.id, e]))
  for (const c of m.cells) {
    const {trace} = traceSnapshot(snap, {src: c.src, dst: c.dst, protocol: 'icmp', size: 84, df: false})
    expect(c, `${c.src} → ${c.dst}`).toEqual(cellOf(byId.get(c.src)!, byId.get(c.dst)!, trace))
  }
}

describe('reachabilityMatrix', () => {
  it('one pod per node, every ordered pair, the diagonal left out', () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    const m = reachabilityMatrix(snap)
    expect(m.endpoints.map((e) => e.node)).toEqual(snap.nodes.map((n) => n.name))
    expect(m.counts).toEqual({pairs: 6, delivered: 6, failed: 0})
    expectCellsAreTraces(snap, m)
  })

  it('an FDB entry deleted on node1: node1 → node2 fails at node1, and node2 → node1 on the reply, nothing else', () => {
    const {snap} = fdbDeleted()
    const m = reachabilityMatrix(snap)
    const [p1, p2] = m.endpoints
    expect(m.cells.filter((c) => c.disposition !== 'DELIVERED')).toEqual([
      {
        src: p1!.id,
        dst: p2!.id,
        disposition: 'FDB_MISS',
        direction: 'request',
        stoppedAt: 'node1',
        findings: expect.arrayContaining(['FDB_MISSING']),
        nodes: ['node1'],
      },
      {
        src: p2!.id,
        dst: p1!.id,
        disposition: 'FDB_MISS',
        direction: 'reply',
        stoppedAt: 'node1',
        findings: expect.arrayContaining(['FDB_MISSING']),
        nodes: ['node2', 'node1'],
      },
    ])
    expectCellsAreTraces(snap, m)
  })

  it('host-gw across a router: the pairs with node3 (the other subnet) fail at the sender, as the trace says', () => {
    const snap = snapshotFixture('flannel-host-gw-routed-lab')
    const m = reachabilityMatrix(snap)
    const failing = m.cells.filter((c) => c.disposition !== 'DELIVERED')
    expect(failing.length).toBe(4)
    for (const c of failing)
      expect(
        [c.src, c.dst].some((p) => m.endpoints.find((e) => e.id === p)!.node === 'node3'),
        `${c.src} → ${c.dst}`,
      ).toBe(true)
    expectCellsAreTraces(snap, m)
    expect(reachabilityMatrix(snap, {allPods: true}).counts.pairs).toBe(
      snap.pods.filter((p) => !p.hostNetwork).length * (snap.pods.filter((p) => !p.hostNetwork).length - 1),
    )
  })
})

describe('matrixDiff', () => {
  it('only the cells that changed, each with the FDB line node1 lost', () => {
    const before = snapshotFixture('flannel-vxlan-lab')
    const {snap: after, line} = fdbDeleted()
    const d = matrixDiff(before, after)
    expect(d.changed.map((c) => [c.src, c.dst, c.before.disposition, c.after.disposition, c.after.direction])).toEqual([
      ['default/pod-node1-1', 'default/pod-node2-1', 'DELIVERED', 'FDB_MISS', 'request'],
      ['default/pod-node2-1', 'default/pod-node1-1', 'DELIVERED', 'FDB_MISS', 'reply'],
    ])
    for (const c of d.changed)
      expect(c.changes).toEqual([{node: 'node1', sections: [{section: 'bridge fdb', removed: [line], added: []}]}])
    expect(matrixDiff(after, before).changed.map((c) => [c.before.disposition, c.after.disposition])).toEqual([
      ['FDB_MISS', 'DELIVERED'],
      ['FDB_MISS', 'DELIVERED'],
    ])
  })
})

describe('matrix text', () => {
  const synthetic = (n: number, broken: (i: number, j: number) => boolean): Matrix => {
    const endpoints = Array.from({length: n}, (_x, i) => ({
      id: `default/pod-node${i + 1}-1`,
      node: `node${i + 1}`,
      ip: `10.0.${i}.2`,
    }))
    const cells = endpoints.flatMap((s, i) =>
      endpoints.flatMap((d, j) =>
        i === j
          ? []
          : [
              broken(i, j)
                ? {
                    src: s.id,
                    dst: d.id,
                    disposition: 'NO_ROUTE' as const,
                    direction: 'request' as const,
                    stoppedAt: s.node,
                    findings: ['ROUTE_MISSING'],
                    nodes: [s.node],
                  }
                : {src: s.id, dst: d.id, disposition: 'DELIVERED' as const, findings: [], nodes: [s.node, d.node]},
            ],
      ),
    )
    const failed = cells.filter((c) => c.disposition !== 'DELIVERED').length
    return {
      cluster: 'big',
      backend: 'flannel-host-gw',
      scope: 'node',
      endpoints,
      cells,
      counts: {pairs: cells.length, delivered: cells.length - failed, failed},
    }
  }

  it(`a grid of ${GRID_MAX} nodes fits an 80-column terminal, a broken pair marked in its row and column`, () => {
    const text = matrixText(synthetic(GRID_MAX, (i, j) => i === 6 && j === 41))
    const lines = text.split('\n')
    for (const l of lines.filter((x) => !/^ {2}default\//.test(x))) expect(l.length, l).toBeLessThanOrEqual(80)
    const row = lines.find((l) => /^ 7 node7 /.test(l))!
    const marks = row.slice(row.length - GRID_MAX)
    expect(marks[41]).toBe('R')
    expect(marks.replace(/[R ]/g, '')).toBe('.'.repeat(GRID_MAX - 2))
    expect(text).toContain('1 pair: NO_ROUTE at node7 (ROUTE_MISSING)\n  default/pod-node7-1 → default/pod-node42-1')
  })

  it('beyond that, no grid: the failing pairs grouped by cause', () => {
    const text = matrixText(synthetic(GRID_MAX + 10, (i) => i === 2))
    expect(text).not.toMatch(/^ +1 node1 /m)
    expect(text).toContain(`${GRID_MAX + 9} pairs: NO_ROUTE at node3 (ROUTE_MISSING)`)
    expect(text).toContain(`and ${GRID_MAX + 4} more`)
  })
})

/** The tags of an SVG document balance (every element closed, in order): a parser's first check. */
function tagsBalance(svg: string): boolean {
  const stack: string[] = []
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    if (m[3]) continue
    if (m[1]) {
      if (stack.pop() !== m[2]) return false
    } else stack.push(m[2]!)
  }
  return stack.length === 0
}

describe('netctl matrix', () => {
  it('JSON as schemas/matrix.schema.json says, exit 1 with a broken pair; the SVG marks exactly that cell', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'netctl-matrix-'))
    try {
      const file = path.join(dir, 'after.json')
      await writeFile(file, JSON.stringify(fdbDeleted().snap))
      const validate = validatorFor('matrix')
      const {code, json} = await netctlJson<Matrix>(['matrix', '--snapshot', file])
      expect(code).toBe(1)
      expect(validate(json), describeSchemaError(validate.errors)).toBe(true)
      expect(json.counts).toEqual({pairs: 6, delivered: 4, failed: 2})

      const svg = await netctl(['matrix', '--snapshot', file, '-o', 'svg'])
      expect(svg.code).toBe(1)
      expect(svg.stdout.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true)
      expect(tagsBalance(svg.stdout)).toBe(true)
      const cells = [
        ...svg.stdout.matchAll(
          /<g class="cell( failed)?" data-src="([^"]+)" data-dst="([^"]+)" data-disposition="([A-Z_]+)">/g,
        ),
      ]
      expect(cells).toHaveLength(6)
      expect(cells.filter((c) => c[1]).map((c) => [c[2], c[3], c[4]])).toEqual([
        ['default/pod-node1-1', 'default/pod-node2-1', 'FDB_MISS'],
        ['default/pod-node2-1', 'default/pod-node1-1', 'FDB_MISS'],
      ])

      const html = await netctl(['matrix', '--snapshot', file, '-o', 'html'])
      expect(html.stdout).toMatch(/^<!doctype html>/)
      expect(html.stdout).toContain('1 pair: FDB_MISS at node1 (FDB_MISSING')
      expect(html.stdout).toContain('1 pair: FDB_MISS on the reply at node1 (FDB_MISSING')

      const d = await netctlJson(['matrix', snapshotFixturePath('flannel-vxlan-lab'), file])
      expect(d.code).toBe(1)
      expect(validate(d.json), describeSchemaError(validate.errors)).toBe(true)
      const text = await netctl(['matrix', snapshotFixturePath('flannel-vxlan-lab'), file])
      expect(text.stdout).toMatch(
        /default\/pod-node1-1 → default\/pod-node2-1: DELIVERED → FDB_MISS at node1 \(FDB_MISSING[^\n]*\n {2}node node1\n {4}bridge fdb\n {4}- \S+ dev flannel\.1 dst /,
      )
      expect((await netctl(['matrix', file, file, '-o', 'svg'])).code).toBe(2)
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})
