/**
 * `netctl trace --probe` against real traffic on every fault of the kernel-oracle
 * suite (test/analyze/trace/breaks.test.ts) and two of the fabric: one flannel vxlan
 * lab and one Calico vxlan lab, each fault applied, probed as a user runs it, checked
 * against ping, and undone (also on failure). Walk and probe must agree: confirmed,
 * the packet last seen on the walk's dropping node (or counted by the dropping rule),
 * never MODEL_DISAGREES. The fabric's faults are invisible to the node state a walk
 * reads (a port's MTU) or seen only from the far end (a port down).
 */
import {expect, it} from 'vitest'

import type {Trace} from '../../src/model/trace.js'
import {netctlJson} from '../helpers/cli.js'
import {describeLab, type LabUp, nsExec, ping, useLab} from '../helpers/lab.js'
import {commandFault, labFaults, withLabFault} from '../helpers/lab-faults.js'

const LONG = 120_000
type Node = LabUp['nodes'][0]

async function probe(lab: string, extra: string[] = []): Promise<Trace> {
  const r = await netctlJson<Trace>([
    'trace',
    'pod-node1-1',
    'pod-node2-1',
    '--lab',
    lab,
    '--probe',
    '--json',
    ...extra,
  ])
  expect([0, 1], r.stderr).toContain(r.code)
  return r.json
}

/** The walk drops, the kernel drops (ping), and the probe confirms it with the packet last seen on the dropping node. */
function expectConfirmedAt(t: Trace, disposition: string): void {
  const path = t.disposition === 'DELIVERED' ? t.returnPath! : t
  expect(path.disposition, JSON.stringify(t.probe)).toBe(disposition)
  const drop = path.hops.at(-1)!
  expect(t.findings.map((f) => f.code)).not.toContain('MODEL_DISAGREES')
  expect(t.probe, t.probe?.note).toMatchObject({verdict: 'confirmed', sent: 3, answered: 0})
  expect(t.probe?.lastSeen?.node, t.probe?.note).toBe(drop.node)
  expect(t.probe?.note).toContain('where the walk drops it')
}

describeLab('trace --probe on the faults of the kernel-oracle suite: flannel vxlan', () => {
  const lab = useLab('prfo', ['--backend', 'flannel-vxlan', '--nodes', '2', '--pods-per-node', '1'])
  const parts = () => {
    const l = lab.get()
    const [n1, n2] = l.nodes as [Node, Node]
    const pod = (n: Node) => l.pods.find((p) => p.node === n.name)!
    return {l, n1, n2, p1: pod(n1), p2: pod(n2), fabric: `${l.name}.fabric`}
  }

  it(
    'a healthy pair: confirmed, the flow in conntrack on both nodes, no drop rule counted',
    async () => {
      const {l, p1} = parts()
      const t = await probe(l.name)
      expect(t.probe).toMatchObject({verdict: 'confirmed', answered: 3})
      expect(t.probe?.conntrack?.map((c) => c.node)).toEqual(expect.arrayContaining(['node1', 'node2']))
      expect(t.probe?.conntrack?.[0]?.entries[0]).toContain(`src=${p1.ip}`)
      expect(t.probe?.rules?.filter((r) => r.drops && r.packets > 0)).toEqual([])
    },
    LONG,
  )

  it(
    "an FDB entry deleted: FDB_MISS, lost on node1's flannel.1",
    async () => {
      const {l, n1, n2, p1, p2} = parts()
      await withLabFault(labFaults.fdbDeleted(n1, n2), async () => {
        expect(await ping(p1.netns, p2.ip, 1)).toBe(false)
        const t = await probe(l.name)
        expectConfirmedAt(t, 'FDB_MISS')
        // the vxlan device counted the frames it had no FDB entry for as dropped, not sent
        expect(t.probe?.firstMissing).toEqual({node: 'node1', interface: 'flannel.1', direction: 'tx'})
      })
    },
    LONG,
  )

  it(
    "the VTEP neighbour's lladdr wrong: DECAP_REJECTED, lost on node2 after its vxlan device",
    async () => {
      const {l, n1, n2, p1, p2} = parts()
      const wrong = '02:00:00:00:be:ef'
      await withLabFault(labFaults.vtepNeighbourWrong(n1, n2, wrong), async () => {
        expect(await ping(p1.netns, p2.ip, 1)).toBe(false)
        expectConfirmedAt(await probe(l.name), 'DECAP_REJECTED')
      })
    },
    LONG,
  )

  it(
    'iptables -I FORWARD -d <pod> -j DROP on node2: DENIED, and the counter of that rule rose by the packets sent',
    async () => {
      const {l, n2, p1, p2} = parts()
      await withLabFault(labFaults.forwardDrop(n2, p2.ip), async () => {
        expect(await ping(p1.netns, p2.ip, 1)).toBe(false)
        const t = await probe(l.name)
        expectConfirmedAt(t, 'DENIED')
        const line = `-A FORWARD -d ${p2.ip}/32 -j DROP`
        expect(t.probe?.rules?.find((r) => r.rule === line)).toMatchObject({node: 'node2', used: true, drops: true})
        expect(t.probe?.rules?.find((r) => r.rule === line)?.packets).toBeGreaterThanOrEqual(3)
        expect(t.probe?.note).toContain(`the counter of \`${line}\` (iptables filter, node2) rose by`)
      })
    },
    LONG,
  )

  it(
    'ip_forward=0 on node2: FORWARDING_DISABLED, lost on node2',
    async () => {
      const {l, n2, p1, p2} = parts()
      await withLabFault(labFaults.forwardingOff(n2), async () => {
        expect(await ping(p1.netns, p2.ip, 1)).toBe(false)
        expectConfirmedAt(await probe(l.name), 'FORWARDING_DISABLED')
      })
    },
    LONG,
  )

  it(
    'a blackhole route on node1: BLACKHOLE, lost on node1',
    async () => {
      const {l, n1, p1, p2} = parts()
      await withLabFault(labFaults.blackhole(n1, p2.ip), async () => {
        expect(await ping(p1.netns, p2.ip, 1)).toBe(false)
        expectConfirmedAt(await probe(l.name), 'BLACKHOLE')
      })
    },
    LONG,
  )

  it(
    'a DF packet bigger than the pod MTU: MTU_EXCEEDED in the pod, nothing counted on the node',
    async () => {
      const {l} = parts()
      const t = await probe(l.name, ['--size', '1451', '--df'])
      expect(t.disposition).toBe('MTU_EXCEEDED')
      expect(t.probe).toMatchObject({verdict: 'confirmed', answered: 0})
      expect(t.findings.map((f) => f.code)).not.toContain('MODEL_DISAGREES')
    },
    LONG,
  )

  it(
    "the fabric's port to node2 down: the walk sees node2's uplink without carrier, the probe confirms the loss on the way there",
    async () => {
      const {l, p1, p2, fabric} = parts()
      const portDown = commandFault(
        fabric,
        ['ip', 'link', 'set', 'node2', 'down'],
        ['ip', 'link', 'set', 'node2', 'up'],
      )
      await withLabFault(portDown, async () => {
        expect(await ping(p1.netns, p2.ip, 1)).toBe(false)
        const t = await probe(l.name)
        expect(t.findings.map((f) => f.code)).toContain('LINK_DOWN')
        expect(t.findings.map((f) => f.code)).not.toContain('MODEL_DISAGREES')
        expect(t.probe).toMatchObject({verdict: 'confirmed', answered: 0, lastSeen: {node: 'node1'}})
        expect(t.probe?.note).toContain('where the walk drops it')
      })
    },
    LONG,
  )

  it(
    "the fabric's port to node2 at MTU 1400: a 1400-byte DF probe is UNDERLAY_DROP naming the MTU, a small one is confirmed, as ping finds",
    async () => {
      const {l, n1, n2, p1, p2, fabric} = parts()
      const portMtu = commandFault(
        fabric,
        ['ip', 'link', 'set', 'node2', 'mtu', '1400'],
        ['ip', 'link', 'set', 'node2', 'mtu', '1500'],
      )
      await withLabFault(portMtu, async () => {
        const big = await nsExec(p1.netns, ['ping', '-n', '-q', '-c', '1', '-W', '1', '-M', 'do', '-s', '1372', p2.ip])
        expect(big.code).not.toBe(0)
        expect(await ping(p1.netns, p2.ip, 1)).toBe(true)

        const small = await probe(l.name)
        expect(small.probe).toMatchObject({verdict: 'confirmed', answered: 3})

        const t = await probe(l.name, ['--size', '1400', '--df'])
        // the walk models every node's MTU (1450 fits the uplinks) but not the fabric's ports
        expect(t.probe).toMatchObject({verdict: 'underlay-drop', answered: 0, smaller: {size: 84, answered: 3}})
        const f = t.findings.find((x) => x.code === 'UNDERLAY_DROP')!
        expect([`node1 (${n1.ip}) → node2 (${n2.ip})`, `node2 (${n2.ip}) → node1 (${n1.ip})`]).toContain(f.subject)
        expect(f.message).toContain('an MTU below 1450')
      })
    },
    LONG,
  )
})

describeLab('trace --probe on a Calico policy drop: a DROP first in the pod’s cali-tw- chain', () => {
  const lab = useLab('prco', ['--backend', 'calico-vxlan', '--nodes', '2', '--pods-per-node', '1'])

  it(
    "is DENIED at that rule, confirmed by the rule's counter",
    async () => {
      const l = lab.get()
      const n2 = l.nodes.find((n) => n.name === 'node2')!
      const p1 = l.pods.find((p) => p.node === 'node1')!
      const p2 = l.pods.find((p) => p.node === 'node2')!
      const healthy = await probe(l.name)
      expect(healthy.probe).toMatchObject({verdict: 'confirmed', answered: 3})
      const iface = healthy.hops.find((h) => h.node === 'node2' && h.action === 'veth')!.out!
      const chain = `cali-tw-${iface}`
      const chainDrop = commandFault(
        n2.netns,
        ['iptables', '-I', chain, '1', '-j', 'DROP'],
        ['iptables', '-D', chain, '-j', 'DROP'],
      )
      await withLabFault(chainDrop, async () => {
        expect(await ping(p1.netns, p2.ip, 1)).toBe(false)
        const t = await probe(l.name)
        expectConfirmedAt(t, 'DENIED')
        expect(t.probe?.note).toContain(`the counter of \`-A ${chain} -j DROP\` (iptables filter, node2) rose by`)
      })
    },
    LONG,
  )
})
