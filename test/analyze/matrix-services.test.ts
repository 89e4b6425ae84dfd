/**
 * Services as matrix columns, over the recorded services lab snapshot
 * (flannel vxlan, kube-proxy iptables, three Services): every Service cell is
 * what the Service trace from that pod says, a broken FDB entry shows as the
 * endpoints it cuts off ("2 of 3"), and the differential matrix names the
 * Service cells that changed with the line that explains them.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {type Matrix, type MatrixDiff, matrixDiff, reachabilityMatrix, serviceCellOf} from '../../src/analyze/matrix.js'
import {traceSnapshot} from '../../src/analyze/trace/index.js'
import type {Snapshot} from '../../src/model/snapshot.js'
import {matrixHtml, matrixSvg, matrixText} from '../../src/render/matrix.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {snapshotFixture, snapshotFixturePath} from '../helpers/fixtures.js'

const FIXTURE = 'flannel-vxlan-services-iptables-lab'
const WEB = 'default/web:80/TCP'
const NO_ENDPOINTS = 'default/no-endpoints:80/TCP'
const NODE_LOCAL = 'default/node-local:80/TCP'
const STICKY = 'default/sticky:80/TCP'
const WEB_LOCAL = 'default/web-local:80/TCP'
const ZONAL = 'default/zonal:80/TCP'
const DNS_UDP = 'kube-system/kube-dns:53/UDP'
const DNS_TCP = 'kube-system/kube-dns:53/TCP'

/** node1 loses its FDB entry for node3's VTEP: node1 and node3 no longer reach each other over vxlan. */
function fdbToNode3Deleted(): {snap: Snapshot; line: string} {
  const snap = snapshotFixture(FIXTURE)
  const n3 = snap.nodes.find((n) => n.name === 'node3')!
  const s1 = snap.nodeStates.node1!
  const gone = s1.fdb.find((e) => e.dev === 'flannel.1' && e.dst === n3.internalIP)!
  s1.fdb = s1.fdb.filter((e) => e !== gone)
  return {snap, line: `${gone.mac} dev flannel.1 dst ${n3.internalIP} self permanent`}
}

/** Each Service cell against the Service trace of its pod walked alone (as `netctl trace POD svc/NS/NAME --port P` walks it). */
function expectServiceCellsAreTraces(snap: Snapshot, m: Matrix): void {
  const rows = new Map(m.endpoints.map((e) => [e.id, e]))
  const columns = new Map(m.services!.map((s) => [s.id, s]))
  expect(m.serviceCells).toHaveLength(m.endpoints.length * m.services!.length)
  for (const c of m.serviceCells!) {
    const svc = columns.get(c.service)!
    const {trace} = traceSnapshot(snap, {
      src: c.src,
      dst: `svc/${svc.namespace}/${svc.name}`,
      port: svc.port,
      protocol: svc.protocol === 'TCP' ? 'tcp' : 'udp',
      size: 84,
      df: false,
    })
    expect(c, `${c.src} → ${c.service}`).toEqual(serviceCellOf(rows.get(c.src)!, svc, trace))
  }
}

const cell = (m: Matrix, src: string, service: string) =>
  m.serviceCells!.find((c) => c.src === src && c.service === service)!

describe('reachabilityMatrix with services', () => {
  it('a column per Service port with a ClusterIP; healthy: every endpoint reached, the Service without endpoints rejected', () => {
    const snap = snapshotFixture(FIXTURE)
    const m = reachabilityMatrix(snap, {services: true})
    expect(m.services!.map((s) => s.id)).toEqual([
      NO_ENDPOINTS,
      NODE_LOCAL,
      STICKY,
      WEB,
      WEB_LOCAL,
      ZONAL,
      DNS_UDP,
      DNS_TCP,
    ])
    expectServiceCellsAreTraces(snap, m)
    for (const src of m.endpoints) {
      expect(cell(m, src.id, WEB)).toMatchObject({disposition: 'DELIVERED', reached: 3, total: 3, unreached: []})
      // externalTrafficPolicy Local is the NodePort's: its ClusterIP spreads over both endpoints
      expect(cell(m, src.id, WEB_LOCAL)).toMatchObject({disposition: 'DELIVERED', reached: 2, total: 2})
      // ClientIP affinity with no client remembered yet: spread like web
      expect(cell(m, src.id, STICKY)).toMatchObject({disposition: 'DELIVERED', reached: 3, total: 3, unreached: []})
      // internalTrafficPolicy Local: the node's own endpoint (node1, node2); node3 has none, its kube-proxy drops
      expect(cell(m, src.id, NODE_LOCAL)).toMatchObject(
        src.node === 'node3'
          ? {disposition: 'DENIED', stoppedAt: 'node3', reached: 0, total: 0}
          : {disposition: 'DELIVERED', reached: 1, total: 1},
      )
      // trafficDistribution PreferClose: the endpoint of the node's zone (node3 shares node1's zone-a)
      expect(cell(m, src.id, ZONAL)).toMatchObject({disposition: 'DELIVERED', reached: 1, total: 1})
      expect(cell(m, src.id, DNS_UDP)).toMatchObject({disposition: 'DELIVERED', reached: 2, total: 2})
      // kube-proxy's REJECT for a Service without endpoints, on the pod's own node
      expect(cell(m, src.id, NO_ENDPOINTS)).toMatchObject({
        disposition: 'DENIED',
        stoppedAt: src.node,
        reached: 0,
        total: 0,
      })
    }
    expect(m.serviceCounts).toEqual({cells: 24, delivered: 20, partial: 0, failed: 4})
    // without the flag the matrix is what it was
    expect(reachabilityMatrix(snap).services).toBeUndefined()
  })

  it('a hostile Service name reaches neither the terminal nor the picture raw', () => {
    const {snap} = fdbToNode3Deleted()
    snap.services!.find((s) => s.name === 'web')!.name = 'web\u001b[2J"><script>x</script>'
    const m = reachabilityMatrix(snap, {services: true})
    const text = matrixText(m)
    expect(text).toContain('default/web?[2J"><script>x</script>:80/TCP from 1 pod: 2 of 3 endpoints')
    for (const line of text.split('\n')) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/)
    for (const out of [matrixSvg(m), matrixHtml(m)]) {
      expect(out).not.toContain('<script>')
      expect(out).toContain('data-service="default/web\u001b[2J&quot;&gt;&lt;script&gt;x&lt;/script&gt;:80/TCP"')
    }
  })

  it('a snapshot without Services: no column, and the text says why', () => {
    const m = reachabilityMatrix(snapshotFixture('flannel-vxlan-lab'), {services: true})
    expect([m.services, m.serviceCells, m.serviceCounts]).toEqual([
      [],
      [],
      {cells: 0, delivered: 0, partial: 0, failed: 0},
    ])
    const text = matrixText(m)
    expect(text).toContain('no Service with a ClusterIP in the snapshot: no Service column')
    expect(text.split('\n').find((l) => l.startsWith('1 node1'))).toBe('1 node1   ..')
  })

  it('an FDB entry node1 → node3 deleted: web reaches 2 of 3 from node1 (node3 on the request) and from node3 (node1 on the reply)', () => {
    const {snap} = fdbToNode3Deleted()
    const m = reachabilityMatrix(snap, {services: true})
    expectServiceCellsAreTraces(snap, m)
    expect(cell(m, 'default/pod-node1-1', WEB)).toMatchObject({
      disposition: 'FDB_MISS',
      direction: 'request',
      stoppedAt: 'node1',
      reached: 2,
      total: 3,
      unreached: [
        {ip: '172.20.3.2', pod: 'default/pod-node3-1', node: 'node3', disposition: 'FDB_MISS', direction: 'request'},
      ],
    })
    expect(cell(m, 'default/pod-node3-1', WEB)).toMatchObject({
      disposition: 'FDB_MISS',
      direction: 'reply',
      reached: 2,
      total: 3,
      unreached: [{pod: 'default/pod-node1-1', disposition: 'FDB_MISS', direction: 'reply'}],
    })
    // kube-dns has no endpoint on node3: node1's pod still reaches both; node2 is untouched
    expect(cell(m, 'default/pod-node1-1', DNS_UDP)).toMatchObject({disposition: 'DELIVERED', reached: 2, total: 2})
    for (const svc of [WEB, DNS_UDP, DNS_TCP])
      expect(cell(m, 'default/pod-node2-1', svc).disposition, svc).toBe('DELIVERED')
    // zonal: node3's pods have node1's endpoint alone (zone-a), so they reach none of it
    expect(cell(m, 'default/pod-node3-1', ZONAL)).toMatchObject({disposition: 'FDB_MISS', reached: 0, total: 1})
    expect(cell(m, 'default/pod-node1-1', ZONAL)).toMatchObject({disposition: 'DELIVERED', reached: 1, total: 1})
    expect(m.serviceCounts).toEqual({cells: 24, delivered: 12, partial: 7, failed: 5})

    // the grid: Service columns after a gap, lower case where some endpoints answer
    const lines = matrixText(m).split('\n')
    expect(lines.find((l) => l.startsWith('1 node1'))).toBe('1 node1   .F D.ff....')
    expect(lines.find((l) => l.startsWith('3 node3'))).toBe('3 node3  F.  DDfffFff')
    expect(lines).toContain(' 7 default/web:80/TCP (http) 172.21.0.80')
    // no ASYMMETRIC_PATH: pod-node1-1 is one of web's endpoints, and its flow to itself, masqueraded to node1 by
    // kube-proxy, has its reply routed back by node1 as the request was (test/analyze/trace/service.test.ts)
    expect(lines).toContain(
      'default/web:80/TCP from 1 pod: 2 of 3 endpoints; not reached: default/pod-node3-1 (172.20.3.2 on node3) FDB_MISS; FDB_MISS at node1 (FDB_MISSING)',
    )
  })
})

describe('matrixDiff with services', () => {
  it('the Service cells that changed, each with the FDB line node1 lost; none without services', () => {
    const before = snapshotFixture(FIXTURE)
    const {snap: after, line} = fdbToNode3Deleted()
    const d = matrixDiff(before, after, {services: true})
    expect(
      d.changedServices!.map((c) => [
        c.src,
        c.service,
        `${c.before.reached}/${c.before.total}`,
        `${c.after.reached}/${c.after.total}`,
      ]),
    ).toEqual([
      ['default/pod-node1-1', STICKY, '3/3', '2/3'],
      ['default/pod-node1-1', WEB, '3/3', '2/3'],
      ['default/pod-node3-1', STICKY, '3/3', '2/3'],
      ['default/pod-node3-1', WEB, '3/3', '2/3'],
      ['default/pod-node3-1', WEB_LOCAL, '2/2', '1/2'],
      ['default/pod-node3-1', ZONAL, '1/1', '0/1'],
      ['default/pod-node3-1', DNS_UDP, '2/2', '1/2'],
      ['default/pod-node3-1', DNS_TCP, '2/2', '1/2'],
    ])
    for (const c of d.changedServices!)
      expect(c.changes).toEqual([{node: 'node1', sections: [{section: 'bridge fdb', removed: [line], added: []}]}])
    expect(matrixDiff(before, after).changedServices).toBeUndefined()
  })

  it("an endpoint gone from the EndpointSlice alone changes no cell (the walk follows kube-proxy's rules); with a broken path, the changed cell carries the Service's changed line", () => {
    const before = snapshotFixture(FIXTURE)
    const sliceOnly = snapshotFixture(FIXTURE)
    const dropNode3 = (snap: Snapshot): void => {
      const web = snap.services!.find((s) => s.name === 'web')!
      web.endpoints = web.endpoints!.filter((e) => e.nodeName !== 'node3')
    }
    dropNode3(sliceOnly)
    expect(matrixDiff(before, sliceOnly, {services: true}).changedServices).toEqual([])

    const {snap: after} = fdbToNode3Deleted()
    dropNode3(after)
    const web = matrixDiff(before, after, {services: true}).changedServices!.filter((c) => c.service === WEB)
    expect(web.map((c) => c.src)).toEqual(['default/pod-node1-1', 'default/pod-node3-1'])
    for (const c of web)
      expect(c.objects).toEqual({
        section: 'services and endpoints',
        removed: ['service default/web endpoint 172.20.3.2 on node3'],
        added: [],
      })
  })
})

describe('netctl matrix --services', () => {
  it('JSON as schemas/matrix.schema.json says, exit 1; the SVG marks the partial and failed Service cells; BEFORE AFTER too', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'netctl-matrix-svc-'))
    try {
      const file = path.join(dir, 'after.json')
      await writeFile(file, JSON.stringify(fdbToNode3Deleted().snap))
      const validate = validatorFor('matrix')
      const {code, json} = await netctlJson<Matrix>(['matrix', '--snapshot', file, '--services'])
      expect(code).toBe(1)
      expect(validate(json), describeSchemaError(validate.errors)).toBe(true)
      expect(json.serviceCounts).toEqual({cells: 24, delivered: 12, partial: 7, failed: 5})

      const svg = await netctl(['matrix', '--snapshot', file, '--services', '-o', 'svg'])
      const cells = [
        ...svg.stdout.matchAll(
          /<g class="cell service( partial)?( failed)?" data-src="([^"]+)" data-service="([^"]+)" data-disposition="([A-Z_]+)" data-reached="(\d+)" data-total="(\d+)">/g,
        ),
      ]
      expect(cells).toHaveLength(24)
      expect(cells.filter((c) => c[1]).map((c) => [c[3], c[4], `${c[6]}/${c[7]}`])).toEqual([
        ['default/pod-node1-1', STICKY, '2/3'],
        ['default/pod-node1-1', WEB, '2/3'],
        ['default/pod-node3-1', STICKY, '2/3'],
        ['default/pod-node3-1', WEB, '2/3'],
        ['default/pod-node3-1', WEB_LOCAL, '1/2'],
        ['default/pod-node3-1', DNS_UDP, '1/2'],
        ['default/pod-node3-1', DNS_TCP, '1/2'],
      ])
      expect(cells.filter((c) => c[2] && !c[1]).map((c) => c[4])).toEqual([
        NO_ENDPOINTS,
        NO_ENDPOINTS,
        NO_ENDPOINTS,
        NODE_LOCAL,
        ZONAL,
      ])

      const html = await netctl(['matrix', '--snapshot', file, '--services', '-o', 'html'])
      expect(html.stdout).toContain('<h2>Services not reached from every pod, by cause</h2>')

      // a healthy snapshot still exits 1: the Service without endpoints is rejected from every pod
      const healthy = await netctl(['matrix', '--snapshot', snapshotFixturePath(FIXTURE), '--services'])
      expect(healthy.code).toBe(1)
      expect((await netctl(['matrix', '--snapshot', snapshotFixturePath(FIXTURE)])).code).toBe(0)

      const d = await netctlJson<MatrixDiff>(['matrix', snapshotFixturePath(FIXTURE), file, '--services'])
      expect(d.code).toBe(1)
      expect(validate(d.json), describeSchemaError(validate.errors)).toBe(true)
      expect(d.json.changedServices).toHaveLength(8)
      const text = await netctl(['matrix', snapshotFixturePath(FIXTURE), file, '--services'])
      expect(text.stdout).toContain('2 pairs changed, 8 Service cells')
      expect(text.stdout).toMatch(
        /default\/pod-node1-1 → default\/web:80\/TCP: DELIVERED \(3 of 3 endpoints\) → 2 of 3 endpoints; not reached: default\/pod-node3-1 [^\n]*\n {2}node node1\n {4}bridge fdb\n {4}- \S+ dev flannel\.1 dst /,
      )
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})
