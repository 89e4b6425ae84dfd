/**
 * The kernel is the oracle for the trace walker: on a lab of every backend,
 * a snapshot collected as a user does it, and for every pod pair netctl's
 * disposition agrees with a real ping, its route decisions with `ip route
 * get` in every namespace the walk crossed, and for one pair with a TCP
 * connect to a listener.
 */
import {describe, expect, it} from 'vitest'

import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Trace} from '../../../src/model/trace.js'
import {mapLimit} from '../../../src/util/exec.js'
import {describeLab, type LabUp, ping as pingOnce, useLab} from '../../helpers/lab.js'
import {schemaErrors} from './fixtures.js'
import {answered, collectLab, disagreements, pingPairs, routeDisagreements, tcpConnects} from './oracle.js'

const LONG = 300_000

const tracer = (snap: Parameters<typeof traceSnapshot>[0]) => (src: string, dst: string) =>
  traceSnapshot(snap, {src, dst, protocol: 'icmp', size: 84, df: true})

/** What a cross-node request looks like on each backend, beyond agreeing with the kernel. */
function expectBackendPath(backend: string, t: Trace): void {
  const actions = t.hops.map((h) => h.action)
  const encap = t.hops.find((h) => h.action === 'encap' || h.action === 'udp-forward')?.packet?.encap.at(-1)
  switch (backend) {
    case 'flannel-vxlan':
      expect(encap).toMatchObject({type: 'vxlan', vni: 1, port: 8472})
      expect(actions).toEqual(expect.arrayContaining(['bridge', 'encap', 'underlay', 'decap', 'deliver']))
      break
    case 'calico-vxlan':
      expect(encap).toMatchObject({type: 'vxlan', vni: 4096, port: 4789})
      expect(actions).toEqual(expect.arrayContaining(['proxy-arp', 'encap', 'decap', 'deliver']))
      break
    case 'flannel-udp':
      expect(encap).toMatchObject({type: 'udp', port: 8285})
      expect(actions.filter((a) => a === 'udp-forward')).toHaveLength(2)
      break
    case 'flannel-host-gw':
      expect(encap).toBeUndefined()
      expect(actions).toEqual(expect.arrayContaining(['bridge', 'underlay', 'deliver']))
      break
    default: {
      // Calico BGP: proxy ARP from the pod, a route from BIRD tied to an Established session
      expect(actions).toEqual(expect.arrayContaining(['proxy-arp', 'underlay', 'deliver']))
      const bird = t.hops.flatMap((h) => h.evidence).filter((l) => /BGP up .*Established/.test(l))
      expect(bird.length).toBeGreaterThan(0)
    }
  }
}

const LABS: Array<{title: string; backend: string; args: string[]}> = [
  ...['flannel-vxlan', 'flannel-host-gw', 'flannel-udp', 'calico-bgp', 'calico-rr', 'calico-vxlan'].map((backend) => ({
    title: `${backend}, flat`,
    backend,
    args: ['--backend', backend, '--nodes', '3', '--pods-per-node', '2'],
  })),
  ...['flannel-vxlan', 'calico-vxlan', 'flannel-host-gw', 'flannel-udp', 'calico-bgp', 'calico-rr'].map((backend) => ({
    title: `${backend}, routed`,
    backend,
    args: ['--backend', backend, '--topology', 'routed', '--nodes', '3', '--pods-per-node', '1'],
  })),
  // the agents' other rule sets: kube-proxy's nftables mode, Docker's FORWARD DROP with rp_filter 2, firewalld's table
  // with rp_filter 1, ufw's chains with INPUT and FORWARD DROP and rp_filter 1
  ...['flannel-vxlan', 'calico-vxlan'].flatMap((backend) =>
    [
      ['--proxy-mode', 'nftables'],
      ['--host-profile', 'docker'],
      ['--host-profile', 'firewalld'],
      ['--host-profile', 'ufw'],
    ].map((agents) => ({
      title: `${backend}, flat, ${agents.join(' ')}`,
      backend,
      args: ['--backend', backend, '--nodes', '3', '--pods-per-node', '2', ...agents],
    })),
  ),
]

describeLab('trace walker vs the kernel', () => {
  for (const spec of LABS) {
    describe(spec.title, () => {
      const lab = useLab('trc', spec.args)

      it(
        'agrees with ping on every pod pair, with ip route get on every hop, and with a TCP connect',
        async () => {
          const l = lab.get()
          const snap = await collectLab(l.name)
          const results = await pingPairs(l.pods, tracer(snap))
          expect(disagreements(results)).toEqual([])
          // and every trace is what `netctl trace --json` promises
          for (const r of results) expect(schemaErrors(r.result.trace), `${r.src.name} → ${r.dst.name}`).toBeUndefined()
          // a healthy lab carries every pair; host-gw across the router only the pairs on one subnet
          const subnet = (pod: {node: string}) => l.nodes.find((n) => n.name === pod.node)?.subnet
          // no encapsulation across the router: host-gw and Calico without overlay carry only the pairs on one subnet
          const l3Broken =
            l.topology === 'routed' && ['flannel-host-gw', 'calico-bgp', 'calico-rr'].includes(spec.backend)
          const carried = (r: (typeof results)[0]) => !l3Broken || subnet(r.src) === subnet(r.dst)
          for (const r of results) expect(r.kernel, `${r.src.name} → ${r.dst.name}`).toBe(carried(r))

          // node endpoints: node1's pods to every node's address and back from every node (the kernel picks the source)
          const hostEnds = l.pods
            .filter((p) => p.node === l.nodes[0]!.name)
            .flatMap((p) =>
              l.nodes.flatMap((n) => [
                {from: p.netns, to: n.ip, trace: tracer(snap)(p.name, n.name)},
                {from: n.netns, to: p.ip, trace: tracer(snap)(n.name, p.name)},
              ]),
            )
          const hostDiffs = await mapLimit(hostEnds, 4, async (x) =>
            (await pingOnce(x.from, x.to, 1)) === answered(x.trace.trace)
              ? undefined
              : `${x.from} → ${x.to}: netctl ${x.trace.trace.disposition}/${x.trace.trace.returnPath?.disposition ?? '-'}`,
          )
          expect(hostDiffs.filter(Boolean)).toEqual([])

          const routes = await routeDisagreements([
            ...results.map((r) => r.result.trace),
            ...hostEnds.map((x) => x.trace.trace),
          ])
          expect(routes.diffs).toEqual([])
          // pods and every node took decisions the kernel was asked about
          for (const n of l.nodes) expect(routes.netns).toContain(n.netns)
          for (const p of l.pods) expect(routes.netns).toContain(p.netns)

          const [n1, n2, n3] = l.nodes as [LabUp['nodes'][0], LabUp['nodes'][0], LabUp['nodes'][0]]
          const pod = (n: {name: string}) => l.pods.find((p) => p.node === n.name)!
          const cross = results.find((r) => r.src.name === pod(n1).name && r.dst.name === pod(n2).name)!
          expect(cross.kernel).toBe(true)
          expectBackendPath(spec.backend, cross.result.trace)

          // TCP to a listener: a pair the kernel carries, and on host-gw across the router one it cannot
          const far = l3Broken ? n3 : n2
          const tcp = traceSnapshot(snap, {
            src: pod(n1).name,
            dst: pod(far).name,
            protocol: 'tcp',
            port: 8080,
            size: 60,
            df: true,
          })
          expect(answered(tcp.trace)).toBe(await tcpConnects(pod(n1), pod(far), 8080))
          if (far === n3 && spec.backend === 'flannel-host-gw')
            expect(tcp.trace).toMatchObject({
              disposition: 'NO_ROUTE',
              findings: expect.arrayContaining([expect.objectContaining({code: 'ROUTE_MISSING'})]),
            })
          if (far === n3) expect(answered(tcp.trace)).toBe(false)
        },
        LONG,
      )
    })
  }
})
