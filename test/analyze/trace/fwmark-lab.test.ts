/**
 * Routing by the packet's mark against the kernel (2-node flannel-vxlan lab, kube-proxy in iptables mode): an
 * `ip rule fwmark 0x4000/0x4000 lookup 100` and a blackhole for the pod network in table 100, added on node1
 * with ip as an operator would. node1's connects to a ClusterIP (marked by kube-proxy's KUBE-MARK-MASQ in nat
 * OUTPUT, routed again by the mark) fail, `ip route get ENDPOINT mark 0x4000` refuses, and the walk ends in the
 * blackhole; a pod's connects, unmarked, still work, as the walk says. The fix as printed, run in a shell,
 * brings node1's connects back.
 */
import {expect, it} from 'vitest'

import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Trace} from '../../../src/model/trace.js'
import {run} from '../../../src/util/exec.js'
import {netctlJson} from '../../helpers/cli.js'
import {describeLab, nsExec, useLab} from '../../helpers/lab.js'
import {connectFrom} from '../../helpers/service-traffic.js'
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
})
