/**
 * Canal in the lab: the calico CNI plugin's pods (cali veths, /32 routes,
 * proxy ARP for 169.254.1.1, no cni0) over flannel's vxlan (flannel.1, onlink
 * routes, PERMANENT neighbours, FDB), flanneld's and Felix's rules, no BIRD.
 * The kernel is the oracle: every pod pair pings, the trace walker agrees with
 * ping and `ip route get`, check finds no error, and NetworkPolicies applied
 * with `netctl lab policy apply` are enforced by Felix's chains as the trace's
 * verdict says (cases of the shared table, test/analyze/policy-cases.ts).
 */
import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {beforeAll, expect, it} from 'vitest'

import {traceSnapshot} from '../../src/analyze/trace/index.js'
import type {Finding} from '../../src/model/finding.js'
import type {Snapshot} from '../../src/model/snapshot.js'
import type {Trace} from '../../src/model/trace.js'
import {mapLimit} from '../../src/util/exec.js'
import {type Case, policyCases, type Row} from '../analyze/policy-cases.js'
import {
  answered,
  collectLab,
  disagreements,
  pingPairs,
  routeDisagreements,
  tcpConnects,
} from '../analyze/trace/oracle.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {describeLab, ipJson, useLab} from '../helpers/lab.js'
import {useResponders} from '../helpers/responders.js'
import {
  inexpressible,
  labPod,
  policyLabFlags,
  policyList,
  policyPods,
  policyVerdict,
  portOf,
  protocolOf,
  realPacket,
  rowListeners,
  snapshotWithLabPolicies,
} from './agents/policy-world.js'

/** A few cases of the shared table: a default deny, a podSelector allow, a named port. */
const CASES = [
  'default-deny-ingress in x isolates every pod of x, not y',
  'allow from pods within the server namespace by podSelector',
  'ports by name: serve-80-tcp resolved against the destination pod',
]

describeLab('canal: Calico policy over flannel vxlan (3 nodes, Felix and flanneld rules)', () => {
  const lab = useLab('cn', [
    '--backend',
    'canal',
    '--nodes',
    '3',
    '--pods-per-node',
    '3',
    '--proxy-mode',
    'iptables',
    ...policyLabFlags,
  ])
  const responders = useResponders()
  let snap: Snapshot

  beforeAll(async () => {
    snap = await collectLab(lab.get().name)
  }, 60_000)

  it('has Calico pods (cali veth, /32 scope link, 169.254.1.1) and no cni0, flannel.1 per peer, no BIRD, cni canal in the inventory', async () => {
    const l = lab.get()
    for (const node of l.nodes) {
      const links = await ipJson<Array<{ifname: string}>>(node.netns, ['link', 'show'])
      expect(links.map((x) => x.ifname)).not.toContain('cni0')
      const [vx] = await ipJson<any[]>(node.netns, ['-d', 'link', 'show', 'flannel.1'])
      expect(vx.linkinfo.info_data).toMatchObject({id: 1, port: 8472, learning: false})
      const routes = await ipJson<Array<{dst: string; gateway?: string; dev?: string; flags?: string[]}>>(node.netns, [
        'route',
        'show',
      ])
      for (const peer of l.nodes.filter((n) => n !== node)) {
        expect(routes).toContainEqual(
          expect.objectContaining({
            dst: peer.podCIDR,
            gateway: peer.podCIDR.replace(/\/\d+$/, ''),
            dev: 'flannel.1',
            flags: ['onlink'],
          }),
        )
      }
      expect(await ipJson(node.netns, ['route', 'show', 'proto', 'bird'])).toEqual([])
      for (const pod of l.pods.filter((p) => p.node === node.name)) {
        const mine = routes.filter((r) => r.dst === pod.ip)
        expect(mine).toEqual([expect.objectContaining({dev: expect.stringMatching(/^cali/)})])
        expect(await ipJson(pod.netns, ['route', 'show', 'default'])).toEqual([
          expect.objectContaining({gateway: '169.254.1.1'}),
        ])
      }
    }
    expect(await readFile(l.inventory, 'utf8')).toMatch(/^ {2}cni: canal$/m)
    const status = await netctlJson<{agents?: {ruleSets: string[]}; bgp?: unknown[]}>([
      'lab',
      'status',
      '--name',
      l.name,
    ])
    expect(status.code).toBe(0)
    expect(status.json.agents?.ruleSets).toEqual(['kube-proxy:iptables', 'flanneld:iptables', 'felix:iptables'])
    expect(status.json.bgp ?? []).toEqual([])
  })

  it('every pod pair pings, and the walk agrees: ping, ip route get on every hop, a TCP connect; no INSUFFICIENT_INFO', async () => {
    const l = lab.get()
    const tracer = (src: string, dst: string) => traceSnapshot(snap, {src, dst, protocol: 'icmp', size: 84, df: true})
    const results = await pingPairs(l.pods, tracer)
    expect(results.filter((r) => !r.kernel).map((r) => `${r.src.name} -> ${r.dst.name}`)).toEqual([])
    expect(disagreements(results)).toEqual([])
    const traces = results.map((r) => r.result.trace)
    expect(
      traces.filter((t) => t.disposition === 'INSUFFICIENT_INFO' || t.returnPath?.disposition === 'INSUFFICIENT_INFO'),
    ).toEqual([])
    const routes = await routeDisagreements(traces)
    expect(routes.diffs).toEqual([])
    expect(routes.asked).toBeGreaterThan(0)
    // across nodes: the pod's proxy ARP gateway, flannel's vxlan (VNI 1, UDP 8472), the other node's cali veth
    const cross = results.find((r) => r.src.node !== r.dst.node)!
    const t = cross.result.trace
    expect(t.hops.map((h) => h.action)).toEqual(
      expect.arrayContaining(['proxy-arp', 'encap', 'underlay', 'decap', 'deliver']),
    )
    expect(t.hops.find((h) => h.action === 'encap')?.packet?.encap.at(-1)).toMatchObject({
      type: 'vxlan',
      vni: 1,
      port: 8472,
    })
    const dstNode = l.nodes.find((n) => n.name === cross.dst.node)!
    expect(t.hops.some((h) => h.netns === dstNode.netns && /^cali/.test(h.out ?? ''))).toBe(true)
    expect(await tcpConnects(cross.src, cross.dst, 7100)).toBe(
      answered(
        traceSnapshot(snap, {src: cross.src.name, dst: cross.dst.name, protocol: 'tcp', port: 7100, size: 60, df: true})
          .trace,
      ),
    )
  }, 120_000)

  it('netctl check --lab finds no error', async () => {
    const r = await netctlJson<{findings: Finding[]}>(['check', '--lab', lab.get().name])
    expect(
      r.json.findings.filter((f) => f.severity === 'error').map((f) => `${f.code} ${f.node ?? ''} ${f.subject}`),
    ).toEqual([])
  })

  it("netctl trace of a cross-node pair: DELIVERED, and its route decisions are the kernel's", async () => {
    const l = lab.get()
    const r = await netctlJson<Trace>(['trace', 'x/pod-node1-1', 'x/pod-node3-1', '--lab', l.name])
    expect(r.code).toBe(0)
    expect(r.json.disposition).toBe('DELIVERED')
    expect(r.json.returnPath?.disposition).toBe('DELIVERED')
    const routes = await routeDisagreements([r.json])
    expect(routes.diffs).toEqual([])
    // decisions taken on both nodes the packet crosses, each asked of that node's kernel
    expect([...routes.netns].filter((ns) => l.nodes.some((n) => n.netns === ns)).sort()).toEqual([
      l.nodes[0]!.netns,
      l.nodes[2]!.netns,
    ])
  })

  it("policies of the shared table, applied with netctl lab policy apply: a real TCP connect agrees with the trace's verdict", async () => {
    const l = lab.get()
    const {podOf, world} = policyPods(l)
    const record = JSON.parse(await readFile(path.join(l.stateDir, 'lab.json'), 'utf8')) as {clusterCIDR: string}
    const cases = policyCases(world(record.clusterCIDR)).filter((c) => CASES.includes(c.name))
    expect(cases.map((c) => c.name).sort()).toEqual([...CASES].sort())
    const tcp = (c: Case): Row[] => c.rows.filter((row) => !inexpressible(row) && protocolOf(row) === 'TCP')
    // a responder in every destination pod, on every port a row probes there, answering with the pod's name
    await mapLimit(rowListeners(cases.flatMap(tcp), podOf), 4, ({pod, ports}) =>
      responders.start(pod.netns, pod.name, ports),
    )
    const disagree: string[] = []
    let probed = 0
    for (const c of cases) {
      const file = path.join(l.stateDir, `canal-case-${CASES.indexOf(c.name)}.json`)
      await writeFile(file, JSON.stringify(policyList(c)))
      const applied = await netctl(['lab', 'policy', 'apply', '-f', file, '--lab', l.name])
      expect(applied.code, applied.stderr).toBe(0)
      const snapshot = snapshotWithLabPolicies(l, snap)
      for (const row of tcp(c)) {
        probed += 1
        const kernel = await realPacket(row, podOf)
        const v = policyVerdict(snapshot, row)
        if (kernel !== v.allowed || kernel !== row.allowed)
          disagree.push(
            `${c.name}: ${row.from} -> ${row.to} TCP/${portOf(row)}: kernel ${kernel}, netctl ${v.allowed}, table ${row.allowed}`,
          )
      }
      for (const p of c.policies)
        expect((await netctl(['lab', 'policy', 'delete', p.name, '-n', p.namespace, '--lab', l.name])).code).toBe(0)
    }
    expect(disagree).toEqual([])
    expect(probed).toBeGreaterThanOrEqual(8)
  }, 120_000)

  it('a default deny: the trace says DENIED with POLICY_DENY, its walk ends at the cali-tw- drop, and the connect fails', async () => {
    const l = lab.get()
    const {podOf} = policyPods(l)
    const file = path.join(l.stateDir, 'canal-deny.yaml')
    await writeFile(
      file,
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: z}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n',
    )
    expect((await netctl(['lab', 'policy', 'apply', '-f', file, '--lab', l.name])).code).toBe(0)
    const src = podOf('x/c')
    const dst = podOf('z/a')
    const t = await netctlJson<Trace>([
      'trace',
      `x/${labPod('x/c')}`,
      `z/${labPod('z/a')}`,
      '--lab',
      l.name,
      '--protocol',
      'tcp',
      '--port',
      '7200',
    ])
    expect(t.code).toBe(1)
    expect(t.json.disposition).toBe('DENIED')
    expect(t.json.findings.map((f) => f.code)).toContain('POLICY_DENY')
    expect(t.json.hops.flatMap((h) => h.evidence).join('\n')).toMatch(
      /cali-tw-\S+ .*End of tier default\. Drop if no policies passed packet/,
    )
    expect(await tcpConnects(src, dst, 7200)).toBe(false)
    expect((await netctl(['lab', 'policy', 'delete', 'deny-all', '-n', 'z', '--lab', l.name])).code).toBe(0)
    expect(await tcpConnects(src, dst, 7200)).toBe(true)
  })
})
