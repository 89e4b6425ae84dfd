/**
 * A Service DST against the kernel, on every backend the lab builds and in both
 * of kube-proxy's modes: from a pod, real DNS queries (UDP) to the cluster DNS
 * ClusterIP, TCP connects to the web Service's ClusterIP and to its NodePort on
 * another node, and from an endpoint to its own Service (kube-proxy's hairpin:
 * masqueraded to its node), enough of each to reach every endpoint (the lab's responders
 * answer with their pod's name), and a connect to the Service without
 * endpoints (refused); then, from two clients, connects to the Service with ClientIP
 * session affinity, each client's all answered by one pod, which the walk names alone, and
 * to the Service with internalTrafficPolicy Local, answered on a node with an endpoint by
 * that node's own and dropped on a node without one, and to the NodePort with
 * externalTrafficPolicy Local from another node (its own endpoint, the client's address
 * kept), to a node without one (dropped), and from the node itself (every endpoint), and to the
 * Service with trafficDistribution PreferClose from every node (only its zone's endpoint), and to an
 * external IP and a load balancer's IP from a pod and from a node, as the walk says. The endpoints real traffic reaches are exactly the ones
 * netctl's per-endpoint walks deliver both ways, the Service without endpoints
 * is rejected in the walk as in the kernel, and every route decision of those
 * walks is the one `ip route get` gives. Then faults made with plain commands
 * (on one lab): a KUBE-SEP DNAT rule deleted on the source node, an endpoint
 * pod's namespace gone while the rules still name it.
 *
 * The labs are independent (each its own namespaces): they run side by side,
 * a few at a time, the tests of one lab in order.
 */
import {describe, expect, it} from 'vitest'

import {runChecks} from '../../../src/analyze/checks/run.js'
import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Trace, TraceServiceEndpoint} from '../../../src/model/trace.js'
import {traceSnapshotFile} from '../../../src/services/trace.js'
import {run} from '../../../src/util/exec.js'
import {describeLab, type LabUp, nsExec, useLab} from '../../helpers/lab.js'
import {answers as seq, connectFrom} from '../../helpers/service-traffic.js'
import {collectLab, routeDisagreements} from './oracle.js'

const LONG = 300_000
/** a lab's tests share its state (the faults put things back): one after the other, whatever the suite's concurrency */
const SEQUENTIAL = {timeout: LONG, concurrent: false}
/** connections per Service: with 3 endpoints at 1/3 each, one is missed with probability 3·(2/3)^30 ≈ 1.5e-5 */
const TRIES = 30

/** requests sent at once: a UDP query waits its 2 s for more after the answer, so one at a time would take a minute */
const BATCH = 10

/** The responders' answers to `n` new connections (or UDP queries, each from a new source port); FAIL for one unanswered. */
async function answers(
  netns: string,
  ip: string,
  port: number,
  proto: 'tcp' | 'udp',
  n = TRIES,
): Promise<Map<string, number>> {
  const one = proto === 'tcp' ? `nc -w 2 ${ip} ${port} </dev/null` : `echo q | socat -t 2 -T 3 - UDP4:${ip}:${port}`
  // each answer is one short line (one write, atomic on the pipe), the requests of a batch side by side
  const r = await nsExec(
    netns,
    [
      'sh',
      '-c',
      `for i in $(seq ${n}); do (out=$(${one}); echo "\${out:-FAIL}") & [ $((i % ${BATCH})) -eq 0 ] && wait; done; wait`,
    ],
    120_000,
  )
  const counts = new Map<string, number>()
  for (const line of r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean))
    counts.set(line, (counts.get(line) ?? 0) + 1)
  return counts
}

/** One TCP connect, as nc reports it: refused, or answered by an endpoint. */
async function connectOnce(netns: string, ip: string, port: number): Promise<string> {
  return (await nsExec(netns, ['sh', '-c', `nc -v -w 2 ${ip} ${port} </dev/null 2>&1; echo rc=$?`], 20_000)).stdout
}

const bothWays = (e: TraceServiceEndpoint): boolean =>
  e.disposition === 'DELIVERED' && e.returnDisposition === 'DELIVERED'

/** The pods netctl says the request reaches (and the reply comes back from). */
const deliveredPods = (t: Trace): string[] =>
  (t.endpoints ?? [])
    .filter(bothWays)
    .map((e) => e.pod ?? e.ip)
    .sort()
const reachedPods = (real: Map<string, number>): string[] => [...real.keys()].filter((k) => k !== 'FAIL').sort()

/** Every endpoint walk as a trace, for the route oracle. */
const endpointWalks = (t: Trace): Trace[] =>
  (t.endpoints ?? []).filter((e) => e.hops).map((e) => ({...t, hops: e.hops!, returnPath: e.returnPath ?? null}))

type Pod = LabUp['pods'][0]

const BACKENDS = [
  'flannel-vxlan',
  'flannel-host-gw',
  'flannel-udp',
  'calico-bgp',
  'calico-rr',
  'calico-vxlan',
  'canal',
] as const
const MATRIX: Array<{backend: string; proxy: 'iptables' | 'nftables'; faults?: boolean; profile?: string}> = [
  ...BACKENDS.flatMap((backend) =>
    (['iptables', 'nftables'] as const).map((proxy) => ({
      backend,
      proxy,
      ...(backend === 'flannel-vxlan' && proxy === 'iptables' ? {faults: true} : {}),
    })),
  ),
  // strict rp_filter: a node's own connection to a Service arrives at a remote endpoint's node from the address
  // kube-proxy masqueraded it to, or is dropped there as spoofed
  {backend: 'flannel-vxlan', proxy: 'nftables', profile: 'firewalld'},
]

/**
 * The kernel's own account of the flows `src` opened to `dst:dport`: per endpoint (the reply's source), the
 * address the reply goes back to, i.e. the source the endpoint saw (masqueraded or not).
 */
async function seenFrom(netns: string, src: string, dst: string, dport: number): Promise<Map<string, string>> {
  const ct = (await nsExec(netns, ['conntrack', '-L', '-p', 'tcp', '--orig-src', src, '--orig-dst', dst])).stdout
  const seen = new Map<string, string>()
  for (const m of ct.matchAll(new RegExp(`dport=${dport} src=(\\S+) dst=(\\S+) sport=8080`, 'g')))
    seen.set(m[1]!, m[2]!)
  return seen
}

/** Every route decision of these walks is the one `ip route get` gives on its node (and there was one to ask). */
async function expectRoutesAsIpRouteGet(walks: Trace[]): Promise<void> {
  const routes = await routeDisagreements(walks)
  expect(routes.asked).toBeGreaterThan(0)
  expect(routes.diffs).toEqual([])
}

/** The source address the walk delivers to the endpoint with. */
const deliveredFrom = (e: TraceServiceEndpoint): string | undefined =>
  e.hops?.filter((h) => h.packet).at(-1)?.packet?.src

describeLab(
  "Services on every lab backend in both proxy modes: netctl's per-endpoint verdicts against real traffic",
  () => {
    for (const {backend, proxy, faults, profile} of MATRIX) {
      // side by side with the other labs (a few at a time, vitest's maxConcurrency); its own tests in order
      describe(
        `a 3-node ${backend} lab, kube-proxy in ${proxy} mode${profile ? `, ${profile} host` : ''}`,
        {concurrent: true},
        () => {
          const lab = useLab('so-svl', [
            '--backend',
            backend,
            '--proxy-mode',
            proxy,
            '--nodes',
            '3',
            '--pods-per-node',
            '2',
            ...(profile ? ['--host-profile', profile] : []),
          ])
          const pod = (l: LabUp, name: string): Pod => l.pods.find((p) => p.name === name)!
          const trace = (
            snap: Awaited<ReturnType<typeof collectLab>>,
            dst: string,
            port?: string | number,
            src = 'pod-node1-2',
          ) => traceSnapshot(snap, {src, dst, ...(port !== undefined ? {port} : {}), size: 84, df: false}).trace

          it(
            'DNS over UDP to the cluster DNS ClusterIP, TCP to the web ClusterIP and to its NodePort on node2, from an endpoint to its own Service (masqueraded to its node, as conntrack says; no asymmetry), and from node1 to the ClusterIP and its own NodePort (each endpoint sees the source conntrack records): the endpoints reached are the ones netctl delivers; routes as ip route get',
            SEQUENTIAL,
            async () => {
              const l = lab.get()
              const src = pod(l, 'pod-node1-2')
              const node2 = l.nodes.find((n) => n.name === 'node2')!
              const snap = await collectLab(l.name)

              const dns = trace(snap, 'dns')
              expect(dns.service).toMatchObject({
                namespace: 'kube-system',
                name: 'kube-dns',
                port: {protocol: 'UDP', port: 53},
                via: 'clusterIP',
                reached: 2,
                total: 2,
              })
              expect(dns.translation).toMatchObject({node: 'node1', agent: 'kube-proxy', hook: 'PREROUTING'})
              expect(dns.endpoints!.map((e) => e.probability)).toEqual([0.5, 0.5])
              const dnsReal = await answers(src.netns, '172.21.0.10', 53, 'udp')
              expect(reachedPods(dnsReal)).toEqual(deliveredPods(dns))
              // the responder forks a process per datagram: on a loaded machine an answer can come too late, never most of them
              expect(dnsReal.get('FAIL') ?? 0).toBeLessThan(TRIES / 3)

              const web = trace(snap, 'svc/default/web', 'http')
              expect(web.disposition).toBe('DELIVERED')
              expect(web.service).toMatchObject({reached: 3, total: 3, port: {port: 80, targetPort: 8080}})
              expect(web.endpoints!.reduce((a, e) => a + e.probability, 0)).toBeCloseTo(1, 6)
              const webReal = await answers(src.netns, '172.21.0.80', 80, 'tcp')
              expect(reachedPods(webReal)).toEqual(deliveredPods(web))
              expect(webReal.has('FAIL')).toBe(false)

              const np = trace(snap, `${node2.ip}:30080`)
              expect(np.service).toMatchObject({via: 'nodePort', node: 'node2', port: {nodePort: 30080}})
              expect(np.translation?.node).toBe('node2')
              const npReal = await answers(src.netns, node2.ip, 30080, 'tcp')
              expect(reachedPods(npReal)).toEqual(deliveredPods(np))

              // the Service without endpoints: kube-proxy rejects it, in the walk (a reject at the drop hop) as in the kernel (refused)
              const none = trace(snap, 'svc/default/no-endpoints')
              expect(none.service).toMatchObject({reached: 0, total: 0})
              expect(none.disposition).toBe('DENIED')
              expect(none.hops.at(-1)!.evidence.join('\n')).toMatch(/REJECT|reject/)
              expect(
                traceSnapshotFile(snap, {
                  src: 'pod-node1-2',
                  dst: 'svc/default/no-endpoints',
                  size: 84,
                  df: false,
                }).trace.findings.map((f) => f.code),
              ).toContain('SERVICE_NO_ENDPOINTS')
              expect(await connectOnce(src.netns, '172.21.0.99', 80)).toMatch(/refused[\s\S]*rc=1/i)

              // --endpoint walks one, and says which
              const one = traceSnapshot(snap, {
                src: 'pod-node1-2',
                dst: 'svc/default/web',
                endpoint: 'pod-node3-1',
                size: 84,
                df: false,
              }).trace
              expect(one.service).toMatchObject({reached: 1, total: 1})
              expect(one.endpoints!.filter((e) => e.disposition).map((e) => e.pod)).toEqual(['pod-node3-1'])
              expect(one.hops.at(-1)).toMatchObject({node: 'node3', action: 'deliver'})

              // an endpoint reaching itself through its Service: kube-proxy masquerades the flow to its node, the
              // kernel's conntrack entry says to which address, and the reply comes to that node to be routed back
              const self = pod(l, 'pod-node1-1')
              const node1 = l.nodes.find((n) => n.name === 'node1')!
              const fromSelf = trace(snap, 'svc/default/web', 'http', self.name)
              const selfReal = await answers(self.netns, '172.21.0.80', 80, 'tcp')
              expect(reachedPods(selfReal)).toContain(self.name)
              expect(reachedPods(selfReal)).toEqual(deliveredPods(fromSelf))
              const masqueradedTo = (await seenFrom(node1.netns, self.ip, '172.21.0.80', 80)).get(self.ip)
              expect(masqueradedTo).toBeDefined()
              expect(masqueradedTo).not.toBe(self.ip)
              const toSelf = fromSelf.endpoints!.find((e) => e.pod === self.name)!
              expect(toSelf.hops!.flatMap((h) => h.evidence)).toContain(
                `SNAT: tcp ${self.ip} → ${self.ip}:8080 becomes tcp ${masqueradedTo} → ${self.ip}:8080`,
              )
              expect(deliveredFrom(toSelf)).toBe(masqueradedTo)
              expect(toSelf.returnPath!.hops.some((h) => h.action === 'route' && h.netns === node1.netns)).toBe(true)
              // the reply retraces the request: no asymmetry to report
              expect(fromSelf.findings.map((f) => f.code)).not.toContain('ASYMMETRIC_PATH')

              // from node1 itself: to the ClusterIP, and to its own NodePort (kube-proxy's nat OUTPUT; a packet to the
              // node's own address goes out over lo and meets it too); the node's address is outside the cluster CIDR,
              // so kube-proxy has the flow masqueraded on its way out: each endpoint sees the source conntrack says
              const fromNode: Trace[] = []
              for (const [dst, ip, port] of [
                ['svc/default/web', '172.21.0.80', 80],
                [`${node1.ip}:30080`, node1.ip, 30080],
              ] as const) {
                const t = trace(snap, dst, undefined, 'node1')
                fromNode.push(t)
                const real = await answers(node1.netns, ip, port, 'tcp')
                expect(reachedPods(real), dst).toEqual(deliveredPods(t))
                expect(real.has('FAIL'), dst).toBe(false)
                const seen = await seenFrom(node1.netns, node1.ip, ip, port)
                expect(seen.size, dst).toBeGreaterThan(0)
                for (const e of t.endpoints!.filter((x) => seen.has(x.ip)))
                  expect(deliveredFrom(e), `${dst} → ${e.pod}`).toBe(seen.get(e.ip))
              }

              await expectRoutesAsIpRouteGet([
                ...endpointWalks(dns),
                ...endpointWalks(web),
                ...endpointWalks(np),
                ...endpointWalks(fromSelf),
                ...fromNode.flatMap(endpointWalks),
              ])
            },
          )

          it(
            "ClientIP session affinity (default/sticky): each client's connects all reach one pod, and the walk over a fresh collect delivers to that pod alone; routes as ip route get",
            SEQUENTIAL,
            async () => {
              const l = lab.get()
              // clients that are no endpoint, on the node of an endpoint and on another
              const clients = ['pod-node1-2', 'pod-node3-2']
              const pinned = new Map<string, Set<string>>()
              // one after the other: connects sent together could each be picked at random before the first is remembered
              for (const c of clients)
                pinned.set(c, new Set(await seq(4, () => connectFrom(pod(l, c).netns, '172.21.0.81', 80, 2))))
              const snap = await collectLab(l.name)
              const walks: Trace[] = []
              for (const c of clients) {
                const got = [...pinned.get(c)!]
                expect(got, c).toHaveLength(1)
                expect(got[0], c).toMatch(/^pod-node\d-1$/)
                const t = trace(snap, 'svc/default/sticky', 'http', c)
                expect(t.service, c).toMatchObject({
                  reached: 1,
                  total: 1,
                  sessionAffinity: {clientIP: {timeoutSeconds: 10800}},
                })
                expect(deliveredPods(t), c).toEqual(got)
                expect(
                  t.findings.map((f) => f.code),
                  c,
                ).not.toContain('INSUFFICIENT_INFO')
                walks.push(...endpointWalks(t))
              }
              await expectRoutesAsIpRouteGet(walks)
            },
          )

          it(
            "internalTrafficPolicy Local (default/node-local, endpoints on node1 and node2): a pod on node1 reaches its own node's endpoint alone, a pod on node3 is dropped there, as real connects are answered or not; routes as ip route get",
            SEQUENTIAL,
            async () => {
              const l = lab.get()
              const snap = await collectLab(l.name)
              const near = trace(snap, 'svc/default/node-local', 'http', 'pod-node1-2')
              expect(near.service).toMatchObject({reached: 1, total: 1, internalTrafficPolicy: 'Local'})
              const nearReal = new Set(
                await seq(4, () => connectFrom(pod(l, 'pod-node1-2').netns, '172.21.0.82', 80, 2)),
              )
              expect([...nearReal]).toEqual(deliveredPods(near))
              expect(deliveredPods(near)).toEqual(['pod-node1-1'])
              const far = trace(snap, 'svc/default/node-local', 'http', 'pod-node3-2')
              expect(far.disposition).toBe('DENIED')
              expect(far.hops.at(-1)!.node).toBe('node3')
              expect(far.service).toMatchObject({reached: 0, total: 0})
              expect(await seq(2, () => connectFrom(pod(l, 'pod-node3-2').netns, '172.21.0.82', 80, 2))).toEqual([
                '',
                '',
              ])
              for (const t of [near, far]) expect(t.findings.map((f) => f.code)).not.toContain('INSUFFICIENT_INFO')
              await expectRoutesAsIpRouteGet([...endpointWalks(near), far])
            },
          )

          it(
            "trafficDistribution PreferClose (default/zonal, endpoints on node1 in zone-a and node2 in zone-b): each node's pods reach only the endpoint of their zone (node3's, in zone-a, node1's), as real connects are answered; check finds the rules as the hints want them; routes as ip route get",
            SEQUENTIAL,
            async () => {
              const l = lab.get()
              const snap = await collectLab(l.name)
              const stale = runChecks(snap).filter(
                (f) => f.code === 'SERVICE_RULES_STALE' || f.code === 'INSUFFICIENT_INFO',
              )
              expect(stale.map((f) => f.message)).toEqual([])
              const walks: Trace[] = []
              for (const [client, zoneOf] of [
                ['pod-node1-2', 'pod-node1-1'],
                ['pod-node2-2', 'pod-node2-1'],
                ['pod-node3-2', 'pod-node1-1'],
              ] as const) {
                const t = trace(snap, 'svc/default/zonal', 'http', client)
                expect(t.service, client).toMatchObject({reached: 1, total: 1, trafficDistribution: 'PreferClose'})
                expect(deliveredPods(t), client).toEqual([zoneOf])
                const other = t.endpoints!.find((e) => e.disposition === undefined)!
                expect(other.note, client).toMatch(/^not walked: topology hints \(trafficDistribution PreferClose\)/)
                // without the hints, 10 connects over two endpoints all reach one with probability 2^-9
                const real = new Set(await seq(10, () => connectFrom(pod(l, client).netns, '172.21.0.84', 80, 2)))
                expect([...real], client).toEqual([zoneOf])
                expect(t.findings.map((f) => f.code)).not.toContain('INSUFFICIENT_INFO')
                walks.push(...endpointWalks(t))
              }
              await expectRoutesAsIpRouteGet(walks)
            },
          )

          it(
            "externalTrafficPolicy Local (default/web-local, NodePort 30082, endpoints on node1 and node2): from node1, node2's NodePort answers with node2's own endpoint, which sees node1's address; node3's drops it, also a pod's (masqueraded to its node on the way); node3's own connects reach both: as the kernel answers",
            SEQUENTIAL,
            async () => {
              const l = lab.get()
              const [node1, node2, node3] = ['node1', 'node2', 'node3'].map((n) => l.nodes.find((x) => x.name === n)!)
              const snap = await collectLab(l.name)
              const walk = (src: string, node: {ip: string}) => trace(snap, `${node.ip}:30082`, undefined, src)

              const kept = walk('node1', node2!)
              expect(kept.service).toMatchObject({
                via: 'nodePort',
                externalTrafficPolicy: 'Local',
                reached: 1,
                total: 1,
              })
              expect(deliveredPods(kept)).toEqual(['pod-node2-1'])
              const keptReal = new Set(await seq(3, () => connectFrom(node1!.netns, node2!.ip, 30082, 2)))
              expect([...keptReal]).toEqual(['pod-node2-1'])
              // the client's address kept: what the endpoint saw, as conntrack on node2 records it
              const seen = await seenFrom(node2!.netns, node1!.ip, node2!.ip, 30082)
              const e = kept.endpoints!.find((x) => x.pod === 'pod-node2-1')!
              expect(seen.get(e.ip)).toBe(node1!.ip)
              expect(deliveredFrom(e)).toBe(node1!.ip)
              for (const x of kept.endpoints!.filter((y) => y.pod !== 'pod-node2-1'))
                expect(x.note).toMatch(/^not walked: externalTrafficPolicy Local: node2's kube-proxy /)

              for (const src of ['node1', 'pod-node1-2']) {
                const dropped = walk(src, node3!)
                expect(dropped.disposition, src).toBe('DENIED')
                expect(dropped.hops.at(-1)!.node, src).toBe('node3')
                const netns = src === 'node1' ? node1!.netns : pod(l, src).netns
                expect(await seq(2, () => connectFrom(netns, node3!.ip, 30082, 2)), src).toEqual(['', ''])
              }

              const own = walk('node3', node3!)
              expect(own.service).toMatchObject({reached: 2, total: 2})
              expect(reachedPods(await answers(node3!.netns, node3!.ip, 30082, 'tcp'))).toEqual(deliveredPods(own))

              const walks = [kept, own].flatMap(endpointWalks)
              for (const t of [kept, own, walk('node1', node3!)])
                expect(t.findings.map((f) => f.code)).not.toContain('INSUFFICIENT_INFO')
              await expectRoutesAsIpRouteGet(walks)
            },
          )

          it(
            "an external IP (default/web, 172.23.0.80, Cluster) from a pod of node3 and from node1, and a load-balancer IP (default/web-local, 172.23.0.83, externalTrafficPolicy Local, loadBalancerSourceRanges: the nodes' network) from node1: the endpoints reached are the ones the walk delivers, each seeing the source conntrack records; the pod's connection to the load-balancer IP is dropped by kube-proxy's load-balancer firewall, as in the kernel; routes as ip route get",
            SEQUENTIAL,
            async () => {
              const l = lab.get()
              const node1 = l.nodes.find((n) => n.name === 'node1')!
              const node3 = l.nodes.find((n) => n.name === 'node3')!
              const client = pod(l, 'pod-node3-2')
              const snap = await collectLab(l.name)
              const walks: Trace[] = []
              const ext = trace(snap, '172.23.0.80', undefined, client.name)
              expect(ext.service).toMatchObject({via: 'externalIP', reached: 3, total: 3})
              expect(reachedPods(await answers(client.netns, '172.23.0.80', 80, 'tcp'))).toEqual(deliveredPods(ext))
              // masqueraded (Cluster policy): what each endpoint saw, as conntrack on node3 (where the DNAT is) records it
              const seen = await seenFrom(node3.netns, client.ip, '172.23.0.80', 80)
              for (const e of ext.endpoints!) expect(seen.get(e.ip), e.pod).toBe(deliveredFrom(e))
              walks.push(...endpointWalks(ext))

              // the pod is in none of the source ranges: kube-proxy's load-balancer firewall drops it on node3
              const fenced = trace(snap, '172.23.0.83:80', undefined, client.name)
              expect(fenced.disposition).toBe('DENIED')
              expect(fenced.hops.at(-1)!.node).toBe('node3')
              expect(fenced.findings.find((f) => f.code === 'FIREWALL_DROP')!.message).toContain(
                "is in none of default/web-local:http's loadBalancerSourceRanges (172.31.0.0/16, 198.51.100.0/24)",
              )
              expect(await seq(2, () => connectFrom(client.netns, '172.23.0.83', 80, 2))).toEqual(['', ''])
              walks.push(fenced)

              for (const [dst, via, total] of [
                ['172.23.0.80', 'externalIP', 3],
                ['172.23.0.83:80', 'loadBalancerIP', 2],
              ] as const) {
                const t = trace(snap, dst, undefined, 'node1')
                expect(t.service, dst).toMatchObject({via, reached: total, total})
                expect(reachedPods(await answers(node1.netns, dst.split(':')[0]!, 80, 'tcp')), dst).toEqual(
                  deliveredPods(t),
                )
                walks.push(...endpointWalks(t))
              }
              for (const t of walks) expect(t.findings.map((f) => f.code)).not.toContain('INSUFFICIENT_INFO')
              await expectRoutesAsIpRouteGet(walks)
            },
          )

          if (faults) {
            it(
              "node1's KUBE-SEP DNAT rule for pod-node3-1 deleted (iptables -t nat -D): a third of the connections are not translated and fail, pod-node3-1 is never reached; netctl walks the untranslated way to its end and says 2 of 3",
              SEQUENTIAL,
              async () => {
                const l = lab.get()
                const node1 = l.nodes.find((n) => n.name === 'node1')!
                const target = pod(l, 'pod-node3-1')
                const rules = await nsExec(node1.netns, ['iptables', '-t', 'nat', '-S'])
                const dnat = rules.stdout
                  .split('\n')
                  .find(
                    (r) =>
                      r.startsWith('-A KUBE-SEP-') &&
                      r.includes('"default/web:http"') &&
                      r.includes(`--to-destination ${target.ip}:8080`),
                  )!
                const chain = dnat.split(' ')[1]!
                const listed = (await nsExec(node1.netns, ['iptables', '-t', 'nat', '-S', chain])).stdout
                  .split('\n')
                  .filter((r) => r.startsWith('-A '))
                const del = await nsExec(node1.netns, [
                  'iptables',
                  '-t',
                  'nat',
                  '-D',
                  chain,
                  String(listed.indexOf(dnat) + 1),
                ])
                expect(del.code).toBe(0)
                try {
                  const real = await answers(pod(l, 'pod-node1-2').netns, '172.21.0.80', 80, 'tcp')
                  const snap = await collectLab(l.name)
                  const t = trace(snap, 'svc/default/web', 80)
                  // the path checks name the node whose rules disagree with the EndpointSlices
                  const stale = traceSnapshotFile(snap, {
                    src: 'pod-node1-2',
                    dst: 'svc/default/web',
                    size: 84,
                    df: false,
                  }).trace.findings.find((f) => f.code === 'SERVICE_RULES_STALE' && f.node === 'node1')
                  expect(stale?.message).toContain(target.ip)
                  expect(reachedPods(real)).toEqual(deliveredPods(t))
                  expect(real.get('FAIL') ?? 0).toBeGreaterThan(0)
                  expect(t.disposition).not.toBe('DELIVERED')
                  expect(t.service).toMatchObject({reached: 2, total: 3})
                  const untranslated = t.endpoints!.find((e) => e.ip === '172.21.0.80')!
                  expect(untranslated.probability).toBeCloseTo(1 / 3, 6)
                  expect(untranslated.disposition).not.toBe('DELIVERED')
                  expect(t.endpoints!.find((e) => e.pod === 'pod-node3-1')).toMatchObject({
                    probability: 0,
                    inEndpointSlice: true,
                  })
                  expect(t.endpoints!.find((e) => e.pod === 'pod-node3-1')!.disposition).toBeUndefined()
                } finally {
                  // put it back where it was, for the next test
                  await nsExec(node1.netns, [
                    'iptables',
                    '-t',
                    'nat',
                    '-I',
                    chain,
                    String(listed.indexOf(dnat) + 1),
                    ...dnat
                      .split(' ')
                      .slice(2)
                      .map((x) => x.replace(/^"|"$/g, '')),
                  ])
                }
                const healed = trace(await collectLab(l.name), 'svc/default/web', 80)
                expect(healed.service).toMatchObject({reached: 3, total: 3})
              },
            )

            it(
              "node1's filter OUTPUT drops what leaves by lo (iptables -I OUTPUT -o lo -j DROP): its ping to its own address dies there, and so do its connections to its own NodePort, though nat OUTPUT's DNAT routed them out of another device: the hook's later chains still see lo; netctl's walk says both",
              SEQUENTIAL,
              async () => {
                const l = lab.get()
                const node1 = l.nodes.find((n) => n.name === 'node1')!
                const rule = ['OUTPUT', '-o', 'lo', '-j', 'DROP']
                expect((await nsExec(node1.netns, ['iptables', '-I', ...rule])).code).toBe(0)
                try {
                  const snap = await collectLab(l.name)
                  const self = trace(snap, 'node1', undefined, 'node1')
                  const pinged = await nsExec(node1.netns, ['ping', '-n', '-q', '-c', '1', '-W', '2', node1.ip])
                  expect(pinged.code).not.toBe(0)
                  expect(self.disposition).toBe('DENIED')
                  expect(self.hops.at(-1)!.evidence.join('\n')).toContain('-A OUTPUT -o lo -j DROP')
                  const np = trace(snap, `${node1.ip}:30080`, undefined, 'node1')
                  const real = await answers(node1.netns, node1.ip, 30080, 'tcp', 6)
                  expect(reachedPods(real)).toEqual([])
                  expect(deliveredPods(np)).toEqual([])
                  for (const e of np.endpoints!) {
                    expect(e.disposition, e.pod).toBe('DENIED')
                    const drop = e.hops!.at(-1)!
                    expect(drop.evidence.join('\n'), e.pod).toContain('-A OUTPUT -o lo -j DROP')
                    expect(drop.out, e.pod).toBe('lo')
                  }
                } finally {
                  await nsExec(node1.netns, ['iptables', '-D', ...rule])
                }
              },
            )

            it(
              "pod-node2-1's network namespace gone (its responders ended, ip netns del) while every node's rules still name it: connections sent there fail, netctl's walk to it is not delivered, the other endpoints are",
              SEQUENTIAL,
              async () => {
                const l = lab.get()
                const gone = pod(l, 'pod-node2-1')
                // the responders the lab started in it keep a namespace alive: end them (by pid), then delete the name
                const pids = (await run('ip', ['netns', 'pids', gone.netns])).stdout.split('\n').filter(Boolean)
                for (const pid of pids) process.kill(Number(pid), 'SIGTERM')
                await new Promise((r) => setTimeout(r, 300))
                const del = await run('ip', ['netns', 'del', gone.netns])
                expect(del.code).toBe(0)

                const src = pod(l, 'pod-node1-2')
                const real = await answers(src.netns, '172.21.0.80', 80, 'tcp')
                const t = trace(await collectLab(l.name), 'svc/default/web', 80)
                expect(reachedPods(real)).toEqual(deliveredPods(t))
                expect(real.has('pod-node2-1')).toBe(false)
                expect(real.get('FAIL') ?? 0).toBeGreaterThan(0)
                expect(t.service).toMatchObject({reached: 2, total: 3})
                expect(t.endpoints!.find((e) => e.pod === 'pod-node2-1')!.disposition).not.toBe('DELIVERED')
                expect(t.disposition).not.toBe('DELIVERED')
                // the DNS Service too: half the queries go to the dead endpoint
                const dns = trace(await collectLab(l.name), 'dns')
                const dnsReal = await answers(src.netns, '172.21.0.10', 53, 'udp', 20)
                expect(reachedPods(dnsReal)).toEqual(deliveredPods(dns))
                expect(dns.service).toMatchObject({reached: 1, total: 2})
              },
            )
          }
        },
      )
    }
  },
)
