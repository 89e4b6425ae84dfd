/**
 * The faults of the kernel-oracle suite (breaks.test.ts) made for real on one
 * flannel vxlan lab, one after the other, with a collect before and after
 * each: `netctl diff` names exactly the injected change and nothing else, and
 * the diff across its undo is the same change the other way round.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import type {SectionDiff} from '../../src/analyze/diff.js'
import type {DiffResult} from '../../src/services/diff.js'
import {sleep} from '../../src/util/wait.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {describeLab, type LabUp, nsRun, useLab} from '../helpers/lab.js'
import {type LabFault, labFaults, vtepAddress} from '../helpers/lab-faults.js'

const LONG = 180_000
type Node = LabUp['nodes'][0]

const sh = nsRun

/** node → section → its lines, for comparing a whole diff at once. */
function byNode(d: DiffResult): Record<string, Record<string, Pick<SectionDiff, 'removed' | 'added'>>> {
  return Object.fromEntries(
    d.nodeDiffs.map((n) => [
      n.node,
      Object.fromEntries(n.sections.map((s) => [s.section, {removed: s.removed, added: s.added}])),
    ]),
  )
}

const mirror = (d: ReturnType<typeof byNode>): ReturnType<typeof byNode> =>
  Object.fromEntries(
    Object.entries(d).map(([node, sections]) => [
      node,
      Object.fromEntries(
        Object.entries(sections).map(([s, {removed, added}]) => [s, {removed: added, added: removed}]),
      ),
    ]),
  )

describeLab('netctl diff: a lab before and after each fault of the oracle suite', () => {
  // two pods per node: a pod's veth taken down leaves cni0 its other port (and its carrier)
  const lab = useLab('mxdiff', ['--backend', 'flannel-vxlan', '--nodes', '3', '--pods-per-node', '2'])
  let dir = ''
  let n = 0
  let before = ''
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'netctl-diff-'))
  })
  afterAll(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  async function collect(): Promise<string> {
    const file = path.join(dir, `s${n++}.json`)
    const r = await netctl(['collect', '--lab', lab.get().name, '--output-file', file])
    if (r.code !== 0) throw new Error(`collect failed (exit ${r.code}): ${r.stderr}`)
    return file
  }

  async function diff(a: string, b: string): Promise<DiffResult> {
    const r = await netctlJson<DiffResult>(['diff', a, b])
    expect(r.code, r.stderr).toBe(0)
    return r.json
  }

  /**
   * The first collect once the kernel has settled: right after lab up, IPv6 duplicate address
   * detection is still running, and each link-local address that passes adds its `local fe80::…`
   * route a moment later — a real change of the kernel's state, but not one any fault made.
   */
  async function settled(): Promise<string> {
    let last = await collect()
    for (let i = 0; i < 10; i++) {
      await sleep(1000)
      const next = await collect()
      if ((await diff(last, next)).changes === 0) return next
      last = next
    }
    throw new Error('the lab never settled: two collects a second apart still differ')
  }

  /** Apply, collect, diff against the collect before; undo, collect, diff again: the one change, then its mirror. */
  async function fault({apply, undo}: LabFault): Promise<{change: DiffResult; undone: DiffResult}> {
    before ||= await settled()
    await apply()
    let after: string
    try {
      after = await collect()
    } finally {
      await undo()
    }
    const restored = await collect()
    const change = await diff(before, after)
    const undone = await diff(after, restored)
    before = restored
    // nothing at cluster level changes: no node, pod, Service or policy was touched
    expect({nodes: change.nodes, pods: change.pods, cluster: change.cluster}).toEqual({
      nodes: {added: [], removed: []},
      pods: {added: [], removed: []},
      cluster: [],
    })
    return {change, undone}
  }

  const parts = () => {
    const l = lab.get()
    const [n1, n2] = l.nodes as [Node, Node]
    return {n1, n2, p2: l.pods.find((p) => p.node === n2.name)!, vtep2: vtepAddress(n2)}
  }

  it(
    'an FDB entry deleted: bridge fdb on node1 loses exactly that entry',
    async () => {
      const {n1, n2} = parts()
      const {change, undone} = await fault(labFaults.fdbDeleted(n1, n2))
      const expected = {
        [n1.name]: {'bridge fdb': {removed: [`${n2.vtepMAC} dev flannel.1 dst ${n2.ip} self permanent`], added: []}},
      }
      expect(byNode(change)).toEqual(expected)
      expect(change.changes).toBe(1)
      expect(byNode(undone)).toEqual(mirror(expected))
    },
    LONG,
  )

  it(
    "a route deleted: ip route on node1 loses the route to node2's podCIDR",
    async () => {
      const {n1, n2, vtep2} = parts()
      const {change, undone} = await fault(labFaults.routeDeleted(n1, n2))
      const expected = {
        [n1.name]: {
          'ip route show table all': {removed: [`${n2.podCIDR} via ${vtep2} dev flannel.1 onlink`], added: []},
        },
      }
      expect(byNode(change)).toEqual(expected)
      expect(byNode(undone)).toEqual(mirror(expected))
    },
    LONG,
  )

  it(
    "a neighbour changed: the VTEP neighbour's lladdr, old line out and new line in",
    async () => {
      const {n1, n2, vtep2} = parts()
      const wrong = '02:00:00:00:be:ef'
      const {change, undone} = await fault(labFaults.vtepNeighbourChanged(n1, n2, wrong))
      const expected = {
        [n1.name]: {
          'ip neigh': {
            removed: [`${vtep2} dev flannel.1 lladdr ${n2.vtepMAC} PERMANENT`],
            added: [`${vtep2} dev flannel.1 lladdr ${wrong} PERMANENT`],
          },
        },
      }
      expect(byNode(change)).toEqual(expected)
      expect(byNode(undone)).toEqual(mirror(expected))
    },
    LONG,
  )

  it(
    'an iptables rule inserted: iptables-save -t filter on node2 gains exactly that rule',
    async () => {
      const {n2, p2} = parts()
      const {change, undone} = await fault(labFaults.forwardDrop(n2, p2.ip))
      const expected = {
        [n2.name]: {'iptables-save -t filter': {removed: [], added: [`-A FORWARD -d ${p2.ip}/32 -j DROP`]}},
      }
      expect(byNode(change)).toEqual(expected)
      expect(byNode(undone)).toEqual(mirror(expected))
    },
    LONG,
  )

  it(
    "a sysctl flipped: rp_filter on node2's uplink, one line out and one in",
    async () => {
      const {n2} = parts()
      const key = 'net.ipv4.conf.eth0.rp_filter'
      const old = (await sh(n2.netns, 'sysctl', '-n', key)).trim()
      const flipped = old === '1' ? '2' : '1'
      const {change, undone} = await fault(labFaults.sysctl(n2, key, flipped, old))
      const expected = {[n2.name]: {sysctl: {removed: [`${key} = ${old}`], added: [`${key} = ${flipped}`]}}}
      expect(byNode(change)).toEqual(expected)
      expect(byNode(undone)).toEqual(mirror(expected))
    },
    LONG,
  )

  it(
    "a link down: the pod's veth on node2, with what the kernel does to it and to its peer, nothing more",
    async () => {
      const {n2, p2} = parts()
      // the host end of p2's veth: the link whose ifindex p2's eth0 names as its peer
      const podEth0 = JSON.parse(await sh(p2.netns, 'ip', '-j', 'link', 'show', 'eth0')) as Array<{link_index: number}>
      const hostLinks = JSON.parse(await sh(n2.netns, 'ip', '-j', 'link', 'show')) as Array<{
        ifindex: number
        ifname: string
      }>
      const veth = hostLinks.find((l) => l.ifindex === podEth0[0]!.link_index)!.ifname
      const {change} = await fault(labFaults.linkDown(n2, veth))
      // (the undo is not mirrored: IPv6 brings its link-local multicast entries back on its own schedule)
      expect(change.nodeDiffs.map((d) => d.node)).toEqual([n2.name])
      const sections = byNode(change)[n2.name]!
      const link = sections['ip -d link']!
      expect(link.removed).toEqual([expect.stringMatching(new RegExp(`^\\d+: ${veth}: <[^>]*\\bUP\\b.*state UP `))])
      expect(link.added).toEqual([
        expect.stringMatching(new RegExp(`^\\d+: ${veth}: <(?![^>]*\\bUP\\b)[^>]*>.*state DOWN `)),
      ])
      const podPrefix = `pod ${p2.namespace}/${p2.name}: `
      for (const [section, {removed, added}] of Object.entries(sections)) {
        if (section.startsWith(podPrefix)) {
          // the peer: carrier lost, its routes marked linkdown, its IPv6 multicast neighbours gone
          expect(['ip -d link', 'ip route show table all', 'ip neigh']).toContain(section.slice(podPrefix.length))
          continue
        }
        expect(section.startsWith('pod '), `${section} is another pod's`).toBe(false)
        // on the node: only lines about the veth itself (its link, its IPv6 address, routes, neighbours, FDB entries)
        for (const line of [...removed, ...added])
          expect(line, section).toMatch(new RegExp(`(^\\d+: ${veth}\\b|\\bdev ${veth}\\b)`))
      }
      expect(sections[`${podPrefix}ip -d link`]?.added).toEqual([expect.stringMatching(/^\d+: eth0: <NO-CARRIER,/)])
    },
    LONG,
  )
})
