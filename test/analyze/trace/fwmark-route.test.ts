/**
 * Routing by the packet's mark, over the recorded Service lab snapshot (kube-proxy in iptables mode) with the
 * `ip rule` and the route an operator adds on node1, as `ip -j rule show` and `ip -j -4 route show table all`
 * print them (fixtures/iproute/rules4-fwmark.json, route4-fwmark-table-blackhole.json): a rule sending packets
 * that carry kube-proxy's masquerade mark (0x4000) to table 100, which blackholes the pod network. node1's own
 * connection to a ClusterIP is marked in nat OUTPUT and routed again by its mark: it dies in table 100, where
 * the walk used to deliver it; unmarked traffic is routed as before. The fix names the table. The lab test
 * (fwmark-lab.test.ts) checks both against `ip route get … mark` and real connects.
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'

import {expect, it} from 'vitest'

import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import {parseRoutes, parseRules} from '../../../src/collect/parse/iproute.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {REPO} from '../../helpers/cli.js'
import {schemaErrors, snapshotFixture} from './fixtures.js'

const fixture = (f: string): string => readFileSync(path.join(REPO, 'fixtures/iproute', f), 'utf8')

function marked(): Snapshot {
  const s = snapshotFixture('flannel-vxlan-services-iptables-lab')
  const state = s.nodeStates.node1!
  state.rules = [
    ...state.rules.filter((r) => r.family !== 'inet'),
    ...parseRules(fixture('rules4-fwmark.json'), 'inet'),
  ]
  state.routes.push(...parseRoutes(fixture('route4-fwmark-table-blackhole.json'), 'inet'))
  return s
}

it("a node's connection to a ClusterIP, marked 0x4000 by kube-proxy and routed again by that mark: blackholed in table 100", () => {
  const t = traceSnapshot(marked(), {src: 'node1', dst: 'svc/default/web', size: 84, df: false}).trace
  expect(schemaErrors(t)).toBeUndefined()
  expect(t.disposition).toBe('BLACKHOLE')
  expect(t.service).toMatchObject({reached: 0})
  const route = t.hops.at(-2)!
  expect(route).toMatchObject({node: 'node1', action: 'route'})
  expect(route.evidence).toEqual(['100: from all fwmark 0x4000/0x4000 lookup 100', 'blackhole 172.20.0.0/16 table 100'])
  const f = t.findings.find((x) => x.code === 'BLACKHOLE_ROUTE')!
  expect(f.message).toBe(
    `blackhole 172.20.0.0/16 (table 100) on node1 drops ${t.translation!.after.split(' → ')[1]!.split(':')[0]}`,
  )
  // deleted where it is: in table 100, not main, and nothing of Calico's IPAM
  expect(f.fix.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
    'ip route del blackhole 172.20.0.0/16 table 100',
  ])
})

it('unmarked traffic is routed by the main table as before: a pod to a pod, and a pod to the ClusterIP (kube-proxy marks only what comes from outside the pod network)', () => {
  for (const dst of ['pod-node2-1', 'svc/default/web']) {
    const t = traceSnapshot(marked(), {src: 'pod-node1-2', dst, size: 84, df: false}).trace
    expect([t.disposition, t.returnPath?.disposition], dst).toEqual(['DELIVERED', 'DELIVERED'])
  }
})
