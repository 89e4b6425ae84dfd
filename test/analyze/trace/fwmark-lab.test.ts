/**
 * Routing by the packet's mark against the kernel (2-node flannel-vxlan lab, kube-proxy in iptables mode): an
 * `ip rule fwmark 0x4000/0x4000 lookup 100` and a blackhole for the pod network in table 100, added on node1
 * with ip as an operator would. node1's connects to a ClusterIP (marked by kube-proxy's KUBE-MARK-MASQ in nat
 * OUTPUT, routed again by the mark) fail, `ip route get ENDPOINT mark 0x4000` refuses, and the walk ends in the
 * blackhole; a pod's connects, unmarked, still work, as the walk says. The fix as printed, run in a shell,
 * brings node1's connects back. Then a mark set in mangle OUTPUT with no DNAT: the kernel routes node1's own
 * packet again by it (ip_route_me_harder), into the blackhole, and so does the walk.
 */
import {expect, it} from 'vitest'

import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Trace} from '../../../src/model/trace.js'
import {run} from '../../../src/util/exec.js'
import {netctlJson} from '../../helpers/cli.js'
import {describeLab, nsExec, ping, useLab} from '../../helpers/lab.js'
import {connectFrom} from '../../helpers/service-traffic.js'
import {flow} from './fixtures.js'
import {collectLab} from './oracle.js'

const CLUSTER_IP = '172.21.0.80'

describeLab('ip rule fwmark: the walk against ip route get and real connects', () => {
  const lab = useLab('fwmark', ['--nodes', '2', '--pods-per-node', '2', '--proxy-mode', 'iptables'])

  it(
    'node1 to a ClusterIP blackholed by its mark; pods unmarked still through; the printed fix repairs it',
    {timeout: 300_000},
    async () => {
      const l = lab.get()
      const node1 = l.nodes.find((n) => n.name === 'node1')!
      // default/web's endpoints are pod-node1-1 and pod-node2-1: pod-node1-2 is a plain client, pod-node1-1
      // reaches itself through the Service, which kube-proxy marks for masquerade (KUBE-SEP's -s ENDPOINT)
      const pod = l.pods.find((p) => p.name === 'pod-node1-2')!
      const endpointPod = l.pods.find((p) => p.name === 'pod-node1-1')!
      const ok = async (argv: string[]) => {
        const r = await nsExec(node1.netns, argv)
        expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0)
      }
      await ok(['ip', 'rule', 'add', 'fwmark', '0x4000/0x4000', 'lookup', '100', 'pref', '100'])
      await ok(['ip', 'route', 'add', 'blackhole', '172.20.0.0/16', 'table', '100'])

      const fromNode = await Promise.all([1, 2, 3, 4].map(() => connectFrom(node1.netns, CLUSTER_IP, 80)))
      expect(fromNode).toEqual(['', '', '', ''])
      const fromPod = await Promise.all([1, 2, 3, 4].map(() => connectFrom(pod.netns, CLUSTER_IP, 80, 2)))
      expect(fromPod.every((a) => a.startsWith('pod-'))).toBe(true)
      const tries = Array.from({length: 12}, (_, i) => i)
      const hairpin = new Set(await Promise.all(tries.map(() => connectFrom(endpointPod.netns, CLUSTER_IP, 80, 2))))
      expect([...hairpin].sort()).toEqual(['', 'pod-node2-1'])

      const snap = await collectLab(l.name)
      const walk = (src: string): Trace => traceSnapshot(snap, {src, dst: 'svc/default/web', size: 84, df: false}).trace
      const t = walk('node1')
      expect(t.disposition).toBe('BLACKHOLE')
      // the kernel, asked for the endpoint the walk was routing to, with the mark the walk carried
      const endpoint = t.translation!.after.split(' → ')[1]!.split(':')[0]!
      const get = await nsExec(node1.netns, ['ip', 'route', 'get', endpoint, 'mark', '0x4000'])
      expect(get.code).not.toBe(0)
      expect(get.stderr).toContain('Invalid argument')
      expect(t.hops.at(-1)!.evidence.join('\n')).toContain('(ip route get: Invalid argument)')
      const fromPodWalk = walk(pod.name)
      expect([fromPodWalk.disposition, fromPodWalk.returnPath?.disposition]).toEqual(['DELIVERED', 'DELIVERED'])
      // the endpoint reaching itself: that way is marked, and blackholed; the other endpoint answers
      const self = walk(endpointPod.name)
      expect(self.endpoints!.map((e) => [e.pod, e.disposition])).toEqual(
        expect.arrayContaining([
          ['pod-node1-1', 'BLACKHOLE'],
          ['pod-node2-1', 'DELIVERED'],
        ]),
      )

      // the command as a user runs it, and its fix pasted into a shell
      const cli = await netctlJson<Trace>(['trace', 'node1', 'svc/default/web', '--lab', l.name])
      expect(cli.code).toBe(1)
      const fix = cli.json.findings.find((f) => f.code === 'BLACKHOLE_ROUTE')!.fix
      expect(fix).toContain(`ip netns exec ${node1.netns} ip route del blackhole 172.20.0.0/16 table 100`)
      const sh = await run('sh', ['-e', '-c', fix])
      expect(sh.code, sh.stderr).toBe(0)
      const after = await Promise.all([1, 2, 3].map(() => connectFrom(node1.netns, CLUSTER_IP, 80, 2)))
      expect(after.every((a) => a.startsWith('pod-'))).toBe(true)
    },
  )

  it(
    "a mark set in OUTPUT's mangle table (or an nft route chain), no DNAT: node1's own packet is routed again by it, into the blackhole",
    {timeout: 300_000},
    async () => {
      const l = lab.get()
      const node1 = l.nodes.find((n) => n.name === 'node1')!
      const [marked, other] = ['pod-node2-1', 'pod-node2-2'].map((n) => l.pods.find((p) => p.name === n)!)
      const client = l.pods.find((p) => p.name === 'pod-node1-2')!
      const ok = async (argv: string[]) => {
        const r = await nsExec(node1.netns, argv)
        expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0)
      }
      // the rule fwmark 0x4000/0x4000 lookup 100 of the test above stays; its table gets the blackhole again
      await ok(['ip', 'route', 'replace', 'blackhole', '172.20.0.0/16', 'table', '100'])
      const mangle = ['OUTPUT', '-d', `${marked!.ip}/32`, '-j', 'MARK', '--set-xmark', '0x4000/0x4000']
      const ways = [
        {
          what: 'iptables mangle',
          add: ['iptables', '-t', 'mangle', '-A', ...mangle],
          del: ['iptables', '-t', 'mangle', '-D', ...mangle],
          evidence: `-A OUTPUT -d ${marked!.ip}/32 -j MARK --set-xmark 0x4000/0x4000`,
        },
        {
          what: 'an nft route chain',
          add: [
            'nft',
            `table ip reroute { chain out { type route hook output priority mangle; ip daddr ${marked!.ip} meta mark set 0x4000; }; }`,
          ],
          del: ['nft', 'delete table ip reroute'],
          evidence: `ip daddr ${marked!.ip} meta mark set 0x00004000`,
        },
      ]
      try {
        for (const way of ways) {
          await ok(way.add)
          try {
            expect(await ping(node1.netns, marked!.ip), way.what).toBe(false)
            expect(await ping(node1.netns, other!.ip), way.what).toBe(true)
            expect(await ping(client.netns, marked!.ip), way.what).toBe(true)
            const snap = await collectLab(l.name)
            const t = flow(snap, 'node1', marked!.name)
            expect(t.disposition, way.what).toBe('BLACKHOLE')
            const evidence = t.hops.flatMap((h) => h.evidence)
            expect(evidence, way.what).toContain(way.evidence)
            expect(evidence).toContain('mark 0x4000 set in OUTPUT: the kernel routes the packet again with it')
            expect(flow(snap, 'node1', other!.name).disposition, way.what).toBe('DELIVERED')
            const fromPod = flow(snap, client.name, marked!.name)
            expect([fromPod.disposition, fromPod.returnPath?.disposition], way.what).toEqual(['DELIVERED', 'DELIVERED'])
          } finally {
            await ok(way.del)
          }
        }
      } finally {
        await ok(['ip', 'route', 'del', 'blackhole', '172.20.0.0/16', 'table', '100'])
      }
    },
  )
})
