/**
 * The lab oracle for NetworkPolicy verdicts: every case of the table the
 * evaluator's unit test reads (test/analyze/policy-cases.ts), in a Calico lab
 * that programs the case's policies as Felix does, checked against real
 * traffic. The lab is the conformance suite's world: namespaces x, y, z (with
 * their labels), pods a, b, c in each (pod=<name>), every pod with the named
 * ports serve-80-tcp, ... One lab serves every case: a case's policies go in
 * with `lab policy apply` (the service the command calls: the lab's change
 * lock, its record and inventory, Felix's chains on every node), each row is a
 * real TCP connect or UDP datagram answered with the destination pod's name by
 * the lab's responder there (test/helpers/responders.ts), or a ping between
 * the pods, and netctl's verdict is the trace's `policy` from a snapshot of
 * the lab with the lab's recorded policies; then the policies are deleted.
 * Rows the lab cannot express are listed with the reason.
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'

import {beforeAll, expect, it} from 'vitest'

import type {Snapshot} from '../../../src/model/snapshot.js'
import {readSnapshotFile} from '../../../src/model/snapshot-file.js'
import {applyLabPolicies, deleteLabPolicy} from '../../../src/services/lab-policy.js'
import {mapLimit} from '../../../src/util/exec.js'
import {type Case, policyCases, type PolicyWorld, type Row} from '../../analyze/policy-cases.js'
import {netctl, netctlJson} from '../../helpers/cli.js'
import {describeLab, useLab} from '../../helpers/lab.js'
import {useResponders} from '../../helpers/responders.js'
import {
  inexpressible,
  labPod,
  policyLabFlags as labFlags,
  policyList,
  policyPods,
  policyVerdict,
  portOf,
  protocolOf,
  realPacket,
  rowListeners,
  snapshotWithLabPolicies,
} from './policy-world.js'

describeLab('NetworkPolicy verdicts against real traffic, every case of the table: calico-vxlan with Felix', () => {
  const lab = useLab('pqpo', [
    '--nodes',
    '3',
    '--pods-per-node',
    '3',
    '--backend',
    'calico-vxlan',
    '--proxy-mode',
    'iptables',
    ...labFlags,
  ])
  const responders = useResponders()
  let base: Snapshot
  let world: PolicyWorld
  let cases: Case[]
  const podOf = (key: string) => policyPods(lab.get()).podOf(key)

  beforeAll(async () => {
    const l = lab.get()
    const record = JSON.parse(readFileSync(path.join(l.stateDir, 'lab.json'), 'utf8')) as {clusterCIDR: string}
    world = policyPods(l).world(record.clusterCIDR)
    cases = policyCases(world)
    // a responder in every destination pod, on every protocol and port a row probes there: TCP answers the connect, UDP the datagram
    const listeners = rowListeners(
      cases.flatMap((c) => c.rows),
      podOf,
    )
    await mapLimit(listeners, 4, ({pod, ports}) => responders.start(pod.netns, pod.name, ports))
    const file = path.join(l.stateDir, 'oracle-base.json')
    const collected = await netctl(['collect', '--lab', l.name, '--output-file', file])
    expect(collected.code, collected.stderr).toBe(0)
    base = await readSnapshotFile(file)
  }, 120_000)

  const snapshotNow = (): Snapshot => snapshotWithLabPolicies(lab.get(), base)
  const real = (row: Row): Promise<boolean> => realPacket(row, podOf)
  const verdict = policyVerdict

  it('lists the rows the lab cannot express, each with its reason, and probes every other row of every case', () => {
    const all = cases.flatMap((c) => c.rows.map((row) => ({c, row})))
    const skipped = all.filter(({row}) => inexpressible(row))
    for (const {c, row} of skipped)
      console.log(
        `not in the lab: ${c.name}: ${row.from} -> ${row.to} ${protocolOf(row)}/${portOf(row)}: ${inexpressible(row)}`,
      )
    // the node, host-network, outside and SCTP rows, and no other
    expect(skipped.length).toBeLessThanOrEqual(16)
    expect(cases.length).toBeGreaterThanOrEqual(40)
    // every case has a row the lab sends for real but these: a node's traffic, a host-network pod's
    const noneInLab = cases.filter((c) => c.rows.every((row) => inexpressible(row)))
    expect(noneInLab.map((c) => c.name)).toEqual([
      "a node's traffic: only an ipBlock selects it, and a pod's own node always passes",
      'a node is not a pod: namespaceSelector {} does not match it, an ipBlock of node addresses does',
      "a host-network pod sends from its node's address: podSelector does not match it, ipBlock does",
      'a host-network pod is selected by no policy (deny-all in x does not isolate it)',
    ])
  })

  it("for every case, the trace's policy verdict equals the packet's fate in the kernel (TCP connect, UDP answer, ping)", async () => {
    const l = lab.get()
    const disagreements: string[] = []
    let probed = 0
    for (const c of cases) {
      const rows = c.rows.filter((row) => !inexpressible(row))
      if (rows.length === 0) continue
      if (c.policies.length > 0) {
        await applyLabPolicies(l.name, JSON.stringify(policyList(c)), `${c.name}.json`, {lockTimeoutMs: 30_000})
      }
      const snapshot = snapshotNow()
      const results = await mapLimit(rows, 8, async (row) => ({
        row,
        kernel: await real(row),
        netctl: verdict(snapshot, row),
      }))
      for (const {row, kernel, netctl: v} of results) {
        probed += 1
        const what = `${c.name}: ${row.from} -> ${row.to} ${protocolOf(row)}${protocolOf(row) === 'ICMP' ? '' : `/${portOf(row)}`}`
        if (kernel !== v.allowed || kernel !== row.allowed)
          disagreements.push(
            `${what}: kernel ${kernel ? 'delivered' : 'dropped'}, netctl's verdict ${v.allowed ? 'allowed' : 'denied'}, the table says ${row.allowed ? 'allowed' : 'denied'}`,
          )
      }
      for (const p of c.policies) await deleteLabPolicy(l.name, p.name, p.namespace, {lockTimeoutMs: 30_000})
    }
    expect(disagreements).toEqual([])
    expect(probed).toBeGreaterThanOrEqual(100)
    // every case applied, probed and deleted in turn: minutes, and many more on a shared, loaded machine
  }, 1_200_000)

  it('the command a user runs says the same: netctl trace --lab -o json on a denied UDP datagram and an allowed TCP connect', async () => {
    const l = lab.get()
    const [udp] = cases.filter((c) => c.name.startsWith('UDP ingress'))
    const doc = udp!.policies.map((p) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {name: p.name, namespace: p.namespace},
      spec: p.spec,
    }))
    const file = path.join(l.stateDir, 'oracle-udp.json')
    await import('node:fs/promises').then((fs) =>
      fs.writeFile(file, JSON.stringify({apiVersion: 'v1', kind: 'List', items: doc})),
    )
    expect((await netctl(['lab', 'policy', 'apply', '-f', file, '--lab', l.name])).code).toBe(0)
    const trace = (row: Row) =>
      netctlJson<{disposition: string; policy?: {allowed: boolean}}>([
        'trace',
        `${row.from.split('/')[0]}/${labPod(row.from)}`,
        `${row.to.split('/')[0]}/${labPod(row.to)}`,
        '--lab',
        l.name,
        '--protocol',
        protocolOf(row).toLowerCase(),
        '--port',
        String(portOf(row)),
      ])
    const denied = udp!.rows.find((r) => !r.allowed && protocolOf(r) === 'UDP')!
    const allowed = udp!.rows.find((r) => r.allowed)!
    for (const row of [denied, allowed]) {
      const t = await trace(row)
      expect(t.json.policy?.allowed, JSON.stringify(t.json.policy)).toBe(row.allowed)
      expect(await real(row)).toBe(row.allowed)
      // the walk over the programmed Felix chains agrees with the kernel too
      expect(t.json.disposition).toBe(row.allowed ? 'DELIVERED' : 'DENIED')
    }
    expect(
      (
        await netctl([
          'lab',
          'policy',
          'delete',
          udp!.policies[0]!.name,
          '-n',
          udp!.policies[0]!.namespace,
          '--lab',
          l.name,
        ])
      ).code,
    ).toBe(0)
  })
})
