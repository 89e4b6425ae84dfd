/**
 * `netctl check --probe` on a real 3-node routed lab, as a user runs it: every
 * pair carried on the healthy lab (exit 0); with the router dropping flannel's
 * vxlan from node1 to node3 only, exactly the pairs a real ping between the
 * chosen pods loses (node1 → node3 on the request, node3 → node1 on its reply),
 * one UNDERLAY_DROP naming both, exit 1. Refused with --snapshot.
 */
import {afterAll, expect, it} from 'vitest'

import type {Finding} from '../../src/model/finding.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {snapshotFixturePath} from '../helpers/fixtures.js'
import {describeLab, type LabUp, nsExec, ping, useLab} from '../helpers/lab.js'

interface ProbePair {
  src: string
  dst: string
  srcNode: string
  dstNode: string
  status: string
  walk: string
  disposition: string
  lastSeen: {node: string; interface: string; direction: string} | null
  firstMissing: {node: string; interface: string; direction: string} | null
}
interface CheckJson {
  findings: Finding[]
  probe: {endpoints: Array<{id: string; node: string; ip: string}>; pairs: ProbePair[]; counts: Record<string, number>}
}

const validate = validatorFor('check')

/** What the kernel says: which pairs of the chosen pods a real ping does not cross. */
async function pingLost(lab: LabUp, endpoints: CheckJson['probe']['endpoints']): Promise<string[]> {
  const lost: string[] = []
  for (const src of endpoints)
    for (const dst of endpoints) {
      if (src === dst) continue
      const pod = lab.pods.find((p) => `${p.namespace}/${p.name}` === src.id)!
      if (!(await ping(pod.netns, dst.ip))) lost.push(`${src.node} → ${dst.node}`)
    }
  return lost.sort()
}

const lostPairs = (j: CheckJson): string[] =>
  j.probe.pairs
    .filter((p) => p.status !== 'carried')
    .map((p) => `${p.srcNode} → ${p.dstNode}`)
    .sort()

describeLab('check --probe on a 3-node routed flannel vxlan lab (node1, node2 | router | node3)', () => {
  const lab = useLab('pcchk', [
    '--nodes',
    '3',
    '--pods-per-node',
    '2',
    '--backend',
    'flannel-vxlan',
    '--topology',
    'routed',
  ])
  const router = () => `${lab.get().name}.router`
  let rule: string[] | undefined
  afterAll(async () => {
    if (rule) await nsExec(router(), ['iptables', '-D', ...rule])
  })

  it(
    'healthy: every pair carried, as ping agrees; one pod per node, the first by name; exit 0',
    {timeout: 240_000},
    async () => {
      const r = await netctlJson<CheckJson>(['check', '--lab', lab.get().name, '--probe'])
      expect(r.code, r.stderr).toBe(0)
      expect(validate(r.json), describeSchemaError(validate.errors)).toBe(true)
      expect(r.json.probe.endpoints.map((e) => `${e.node} ${e.id}`)).toEqual([
        'node1 default/pod-node1-1',
        'node2 default/pod-node2-1',
        'node3 default/pod-node3-1',
      ])
      expect(r.json.probe.counts).toEqual({pairs: 6, carried: 6, lost: 0, notSent: 0})
      expect(await pingLost(lab.get(), r.json.probe.endpoints)).toEqual([])
      expect(r.json.findings.filter((f) => f.code === 'UNDERLAY_DROP' || f.code === 'MODEL_DISAGREES')).toEqual([])

      // --node: only the pairs from or to that node are sent
      const one = await netctlJson<CheckJson>(['check', '--lab', lab.get().name, '--probe', '--node', 'node3'])
      expect(one.code, one.stderr).toBe(0)
      expect(one.json.probe.pairs.map((p) => `${p.srcNode} → ${p.dstNode}`)).toEqual([
        'node1 → node3',
        'node2 → node3',
        'node3 → node1',
        'node3 → node2',
      ])
    },
  )

  it(
    'the router drops vxlan from node1 to node3: exactly the pairs ping loses, localised, one UNDERLAY_DROP naming them, exit 1',
    {timeout: 240_000},
    async () => {
      const {nodes} = lab.get()
      const ip = (n: string) => nodes.find((x) => x.name === n)!.ip
      rule = ['FORWARD', '-s', ip('node1'), '-d', ip('node3'), '-p', 'udp', '--dport', '8472', '-j', 'DROP']
      const added = await nsExec(router(), ['iptables', '-I', ...rule])
      expect(added.code, added.stderr).toBe(0)

      const r = await netctlJson<CheckJson>(['check', '--lab', lab.get().name, '--probe'])
      expect(r.code, r.stderr).toBe(1)
      expect(validate(r.json), describeSchemaError(validate.errors)).toBe(true)
      const kernel = await pingLost(lab.get(), r.json.probe.endpoints)
      expect(kernel).toEqual(['node1 → node3', 'node3 → node1'])
      expect(lostPairs(r.json)).toEqual(kernel)
      expect(r.json.probe.counts).toEqual({pairs: 6, carried: 4, lost: 2, notSent: 0})

      const pair = (s: string, d: string) => r.json.probe.pairs.find((p) => p.srcNode === s && p.dstNode === d)!
      // the request dies between node1's uplink and node3's
      expect(pair('node1', 'node3')).toMatchObject({
        walk: 'DELIVERED',
        disposition: 'UNDERLAY_DROP',
        lastSeen: {node: 'node1', interface: 'eth0', direction: 'tx'},
        firstMissing: {node: 'node3', interface: 'eth0', direction: 'rx'},
      })
      // node3's request arrives; its reply, node1 → node3, is what dies
      expect(pair('node3', 'node1')).toMatchObject({
        walk: 'DELIVERED',
        disposition: 'UNDERLAY_DROP',
        lastSeen: {node: 'node1', interface: 'eth0', direction: 'tx'},
        firstMissing: {node: 'node3', interface: 'eth0', direction: 'rx'},
      })

      const drops = r.json.findings.filter((f) => f.code === 'UNDERLAY_DROP')
      expect(drops).toHaveLength(1)
      expect(drops[0]).toMatchObject({
        severity: 'error',
        subject: '2 node pairs: node1 → node3, node3 → node1',
      })
      expect(drops[0]!.message).toContain('UDP 8472')
      expect(r.json.findings.filter((f) => f.code === 'MODEL_DISAGREES')).toEqual([])

      const text = await netctl(['check', '--lab', lab.get().name, '--probe'])
      expect(text.code).toBe(1)
      // rows from, columns to: node1 → node3 and node3 → node1 are U, the rest carried
      expect(text.stdout).toContain(['1 node1   .U', '2 node2  . .', '3 node3  U. '].join('\n'))
      expect(text.stdout).toContain('pods: node1 default/pod-node1-1')
    },
  )
})

it('check --probe on a saved snapshot is refused: a usage error, exit 2, one line', async () => {
  const r = await netctl(['check', '--snapshot', snapshotFixturePath('flannel-vxlan-lab'), '--probe'])
  expect(r.code).toBe(2)
  expect(r.stderr.split('\n')[0]).toBe(
    'netctl: --probe sends real packets, so it needs a live cluster (--lab, --inventory, Kubernetes), not --snapshot',
  )
})
