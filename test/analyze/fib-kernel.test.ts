/**
 * The kernel is the oracle: on real lab nodes, and in namespaces of our own
 * with harder tables, the forwarding model must answer what `ip route get`
 * answers for a wide spread of packets (same outcome or errno, table, device,
 * gateway, source), and the neighbour model must agree with what pings and
 * ARP actually did.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {compileFib, lookupRoute, type RouteDecision} from '../../src/analyze/fib.js'
import {answersArp, resolveNextHops} from '../../src/analyze/neighbour.js'
import {mapLimit, run} from '../../src/util/exec.js'
import {fibStateFromIpJson, readRawIpState, settleAddresses} from '../helpers/ip-json.js'
import {describeLab, type LabUp, ping, uniqueLabName, useLab} from '../helpers/lab.js'
import {defaultsScenario, deleteNamespaces, policyScenario, proxyArpScenario} from './fib-scenarios.js'
import {
  compareWithKernel,
  kernelRouteGet,
  kernelRouteGetMany,
  labSpread,
  type SpreadOptions,
  spreadQueries,
} from './kernel-oracle.js'

const LONG = 300_000

interface Agreement {
  netns: string
  queries: number
  diffs: string[]
  /** the model's outcomes seen, e.g. unicast, local, rp-filter */
  outcomes: Set<string>
  decisions: RouteDecision[]
}

/** Ask the kernel and the model the same questions in one namespace. */
async function agreeIn(netns: string, spreads: SpreadOptions[]): Promise<Agreement> {
  await settleAddresses(netns)
  const state = fibStateFromIpJson(await readRawIpState(netns))
  const fib = compileFib(state)
  const queries = spreads.flatMap((s) => spreadQueries(state, s))
  const answers = await kernelRouteGetMany(netns, queries)
  const decisions = queries.map((q) => lookupRoute(fib, q))
  const diffs = queries.flatMap((q, i) =>
    compareWithKernel(fib, q, decisions[i] as RouteDecision, answers[i] as {error?: string}),
  )
  return {netns, queries: queries.length, diffs, outcomes: new Set(decisions.map((d) => d.type)), decisions}
}

/** Every node, every pod and the router of a lab. */
async function agreeOnLab(lab: LabUp): Promise<Agreement[]> {
  const out: Agreement[] = []
  for (const node of lab.nodes) out.push(await agreeIn(node.netns, [labSpread(lab, node.name)]))
  for (const pod of lab.pods) out.push(await agreeIn(pod.netns, [labSpread(lab, pod.node)]))
  if (lab.topology === 'routed') {
    out.push(
      await agreeIn(`${lab.name}.router`, [
        {
          dsts: [...lab.nodes.map((n) => n.ip), ...lab.pods.map((p) => p.ip)],
          remoteSources: lab.nodes.map((n) => n.ip),
        },
      ]),
    )
  }
  return out
}

function expectAgreement(results: Agreement[]): void {
  for (const r of results) expect(r.queries, r.netns).toBeGreaterThan(50)
  expect(results.flatMap((r) => r.diffs)).toEqual([])
}

const LABS: Array<{title: string; args: string[]}> = [
  {title: 'flannel-vxlan, flat', args: ['--backend', 'flannel-vxlan', '--nodes', '3', '--pods-per-node', '1']},
  {
    title: 'flannel-vxlan, routed',
    args: ['--backend', 'flannel-vxlan', '--topology', 'routed', '--nodes', '3', '--pods-per-node', '1'],
  },
  {title: 'flannel-host-gw, flat', args: ['--backend', 'flannel-host-gw', '--nodes', '3', '--pods-per-node', '1']},
  {
    title: 'flannel-host-gw, routed',
    args: ['--backend', 'flannel-host-gw', '--topology', 'routed', '--nodes', '3', '--pods-per-node', '1'],
  },
]

describeLab('forwarding model vs the kernel', () => {
  for (const spec of LABS) {
    describe(spec.title, () => {
      const lab = useLab('fib', spec.args)

      it(
        'answers ip route get on every node, pod and router',
        async () => {
          const l = lab.get()
          // the batched oracle answers exactly as single ip route get calls do
          const n1 = l.nodes[0]!
          const sample = spreadQueries(
            fibStateFromIpJson(await readRawIpState(n1.netns)),
            labSpread(l, n1.name),
          ).filter((_, i) => i % 13 === 0)
          expect(await kernelRouteGetMany(n1.netns, sample, 7)).toEqual(
            await mapLimit(sample, 4, (q) => kernelRouteGet(n1.netns, q)),
          )
          const results = await agreeOnLab(l)
          expectAgreement(results)
          const seen = new Set(results.flatMap((r) => [...r.outcomes]))
          for (const o of ['unicast', 'local', 'broadcast', 'martian-source', 'bad-source']) expect(seen).toContain(o)
        },
        LONG,
      )

      it(
        'names the backend route behind a remote pod, as the kernel picks it',
        async () => {
          const l = lab.get()
          const [n1, n2, n3] = l.nodes as [LabUp['nodes'][0], LabUp['nodes'][0], LabUp['nodes'][0]]
          const state = fibStateFromIpJson(await readRawIpState(n1.netns))
          const pod2 = l.pods.find((p) => p.node === n2.name)!
          const d = lookupRoute(state, {dst: pod2.ip})
          const k = await kernelRouteGet(n1.netns, {dst: pod2.ip})
          expect(k.route?.dev).toBe(d.dev)
          if (spec.args.includes('flannel-vxlan')) {
            expect(d).toMatchObject({
              gateway: n2.podCIDR.replace(/\/\d+$/, ''),
              dev: 'flannel.1',
              onlink: true,
              src: n1.podCIDR.replace(/\/\d+$/, ''),
            })
            expect(d.evidence).toContain(`${n2.podCIDR} via ${n2.podCIDR.replace(/\/\d+$/, '')} dev flannel.1 onlink`)
          } else {
            expect(d).toMatchObject({gateway: n2.ip, dev: 'eth0'})
            expect(d.evidence).toContain(`${n2.podCIDR} via ${n2.ip} dev eth0`)
          }
          if (spec.args.includes('flannel-host-gw') && spec.args.includes('routed')) {
            // node3 sits alone on the second subnet: its host-gw routes were refused, its pods' traffic takes the default route
            const pod1 = l.pods.find((p) => p.node === n1.name)!
            const s3 = fibStateFromIpJson(await readRawIpState(n3.netns))
            const d3 = lookupRoute(s3, {dst: pod1.ip})
            expect(d3).toMatchObject({gateway: '172.31.2.1', dev: 'eth0'})
            expect(d3.evidence).toEqual(['32766: from all lookup main', 'default via 172.31.2.1 dev eth0'])
            expect((await kernelRouteGet(n3.netns, {dst: pod1.ip})).route).toMatchObject({
              gateway: '172.31.2.1',
              dev: 'eth0',
            })
          }
        },
        LONG,
      )

      it(
        'resolves next hops as the pings found them',
        async () => {
          const l = lab.get()
          const n1 = l.nodes[0]!
          const absent = n1.ip.replace(/\.\d+$/, '.200')
          const targets = [...l.pods.map((p) => p.ip), ...l.nodes.slice(1).map((n) => n.ip), absent]
          const pings = await mapLimit(targets, 4, async (dst) => ({dst, ok: await ping(n1.netns, dst, 1)}))
          const state = fibStateFromIpJson(await readRawIpState(n1.netns))
          expect(pings.find((p) => p.dst === absent)?.ok).toBe(false)
          for (const p of pings) {
            const d = lookupRoute(state, {dst: p.dst})
            const res = resolveNextHops(state, d, p.dst)
            if (p.ok) for (const r of res) expect(r.status, `${p.dst}: ${r.reason}`).not.toBe('unresolved')
            if (p.dst === absent)
              expect(res[0], absent).toMatchObject({
                address: absent,
                dev: 'eth0',
                status: 'unresolved',
                disposition: 'NEIGHBOR_UNRESOLVED',
              })
          }
          expect(pings.filter((p) => p.ok).length).toBeGreaterThan(2)
        },
        LONG,
      )
    })
  }

  describe('namespaces of our own with harder tables', () => {
    const name = uniqueLabName('fib')
    const scenarios = [policyScenario(name), defaultsScenario(name), proxyArpScenario(name)]
    const all = scenarios.flatMap((s) => s.namespaces)

    beforeAll(async () => {
      try {
        for (const s of scenarios) await s.build()
      } catch (error) {
        await deleteNamespaces(all)
        throw error
      }
    })
    afterAll(async () => {
      await deleteNamespaces(all)
    })

    it(
      'policy rules, custom tables, reject and throw routes, multipath, metrics, down links, onlink, prefsrc, rp_filter',
      async () => {
        const sc = scenarios[0]!
        const r = await agreeIn(sc.subject, sc.spread)
        expectAgreement([r])
        for (const o of [
          'unicast',
          'local',
          'broadcast',
          'multicast',
          'blackhole',
          'unreachable',
          'prohibit',
          'no-route',
          'rp-filter',
          'martian-source',
          'martian-destination',
          'forwarding-disabled',
          'bad-source',
        ]) {
          expect(r.outcomes, o).toContain(o)
        }
        // the answers came from rules and tables of every kind
        const rules = new Set(r.decisions.map((d) => d.rulePriority))
        for (const p of [0, 100, 110, 120, 130, 140, 180, 200, 210, 230, 240, 260, 32766])
          expect(rules, `rule ${p}`).toContain(p)
        // none of these ever decides: 150 jumps (over 160) to 200, 170 and 270 point at tables without a match, 220 is a nop, 250 names a device the node lacks
        for (const p of [150, 160, 170, 220, 250, 270]) expect(rules, `rule ${p}`).not.toContain(p)
        expect(
          r.decisions.some(
            (d) => d.rulePriority === 200 && d.evidence[0] === '150: from all to 172.30.71.0/24 goto 200',
          ),
        ).toBe(true)
        expect(r.decisions.some((d) => d.linkdown)).toBe(true)
        expect(r.decisions.some((d) => (d.nexthops?.length ?? 0) > 1)).toBe(true)
        expect(r.decisions.some((d) => d.notes.some((n) => /dev a6 is down/.test(n)))).toBe(true)
      },
      LONG,
    )

    it(
      'default rules only, per-device forwarding, and IPv6',
      async () => {
        const sc = scenarios[1]!
        const r = await agreeIn(sc.subject, sc.spread)
        expectAgreement([r])
        expect(r.decisions.some((d) => d.family === 'inet6' && d.type === 'unicast')).toBe(true)
        expect(r.decisions.some((d) => d.family === 'inet6' && d.error === 'EACCES')).toBe(true)
        expect(r.outcomes).toContain('forwarding-disabled')
      },
      LONG,
    )

    it(
      'follows the kernel when a link goes down: routes move to the next metric',
      async () => {
        const sc = scenarios[1]!
        const before = lookupRoute(fibStateFromIpJson(await readRawIpState(sc.subject)), {dst: '172.29.8.1'})
        expect(before).toMatchObject({dev: 'c1', route: {metric: 5}})
        expect((await run('ip', ['-n', sc.subject, 'link', 'set', 'c1', 'down'])).code).toBe(0)
        try {
          const r = await agreeIn(sc.subject, [sc.spread[0]!])
          expectAgreement([r])
          const after = lookupRoute(fibStateFromIpJson(await readRawIpState(sc.subject)), {dst: '172.29.8.1'})
          expect(after).toMatchObject({dev: 'c2', route: {metric: 7}})
        } finally {
          await run('ip', ['-n', sc.subject, 'link', 'set', 'c1', 'up'])
        }
      },
      LONG,
    )

    it(
      'proxy ARP: answersArp and the pods neighbour tables agree with what the pings did',
      async () => {
        const sc = scenarios[2]!
        expectAgreement([await agreeIn(sc.subject, sc.spread)])
        const [host, , ...pods] = sc.namespaces as [string, string, string, string, string]
        const senders = ['172.28.1.5', '172.28.1.6', '172.28.1.7']
        const devs = ['cali1', 'cali2', 'cali3']
        const pinged = await Promise.all(pods.map((p) => ping(p, '172.28.0.2', 1)))
        expect(pinged).toEqual([true, false, true])
        const hostState = fibStateFromIpJson(await readRawIpState(host))
        for (const [i, pod] of pods.entries()) {
          const ans = answersArp(hostState, {target: '169.254.1.1', sender: senders[i]!, dev: devs[i]!})
          expect(ans.answers, `${devs[i]}: ${ans.reason}`).toBe(pinged[i])
          const podState = fibStateFromIpJson(await readRawIpState(pod))
          const res = resolveNextHops(podState, lookupRoute(podState, {dst: '172.28.0.2'}), '172.28.0.2')
          expect(
            res.map((r) => r.status),
            pod,
          ).toEqual([pinged[i] ? 'resolved' : 'unresolved'])
          if (pinged[i]) expect(res[0]?.lladdr).toBe('ee:ee:ee:ee:ee:ee')
        }
      },
      LONG,
    )
  })
})
