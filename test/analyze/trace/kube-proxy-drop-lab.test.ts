/**
 * kube-proxy's intended drops against the kernel, in both of its modes: on a 3-node lab, a connect to
 * the Service without endpoints is refused, one to default/node-local from node3 (internalTrafficPolicy
 * Local, no endpoint there) and one from node1 to node3's NodePort of default/web-local
 * (externalTrafficPolicy Local) go unanswered, while the same Services answer where they have an
 * endpoint; netctl's walk ends DENIED at the same node and names each Service (SERVICE_NO_ENDPOINTS),
 * never FIREWALL_DROP, whose fix would delete kube-proxy's rule. `netctl trace --lab` says so too.
 */
import {describe, expect, it} from 'vitest'

import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Trace} from '../../../src/model/trace.js'
import {netctlJson} from '../../helpers/cli.js'
import {describeLab, nsExec, useLab} from '../../helpers/lab.js'
import {collectLab} from './oracle.js'

const LONG = 300_000

/** One TCP connect as nc reports it (`refused`, or silence until the timeout), and its exit code. */
async function connect(netns: string, ip: string, port: number): Promise<string> {
  return (await nsExec(netns, ['sh', '-c', `nc -v -w 2 ${ip} ${port} </dev/null 2>&1; echo rc=$?`], 20_000)).stdout
}

describeLab("kube-proxy's intended drops: netctl's verdict against real connects", () => {
  for (const proxy of ['iptables', 'nftables'] as const) {
    describe(`a 3-node flannel-vxlan lab, kube-proxy in ${proxy} mode`, {concurrent: true}, () => {
      const lab = useLab('kpdrop', ['--nodes', '3', '--pods-per-node', '2', '--proxy-mode', proxy])

      it(
        'no endpoints (refused), no local endpoint for the ClusterIP on node3 and for the NodePort on node3 (unanswered): DENIED there, SERVICE_NO_ENDPOINTS naming the Service, no FIREWALL_DROP',
        {timeout: LONG},
        async () => {
          const l = lab.get()
          const netnsOf = (name: string): string =>
            l.pods.find((p) => p.name === name)?.netns ?? l.nodes.find((n) => n.name === name)!.netns
          const ipOf = (node: string): string => l.nodes.find((n) => n.name === node)!.ip
          const snap = await collectLab(l.name)
          const walk = (src: string, dst: string): Trace => traceSnapshot(snap, {src, dst, size: 84, df: false}).trace
          const expectServiceDrop = (t: Trace, node: string, service: string): void => {
            expect(t.disposition).toBe('DENIED')
            expect(t.hops.at(-1)).toMatchObject({node, action: 'drop', findings: ['SERVICE_NO_ENDPOINTS']})
            expect(t.findings.map((f) => `${f.code} ${f.subject}`)).toEqual([`SERVICE_NO_ENDPOINTS Service ${service}`])
          }

          // the Service without endpoints: refused by the kernel, rejected in the walk
          expect(await connect(netnsOf('pod-node1-2'), '172.21.0.99', 80)).toMatch(/refused[\s\S]*rc=1/i)
          expectServiceDrop(walk('pod-node1-2', 'svc/default/no-endpoints'), 'node1', 'default/no-endpoints')

          // internalTrafficPolicy Local: node3 has no endpoint and drops; node1 has one and answers
          const far = await connect(netnsOf('pod-node3-2'), '172.21.0.82', 80)
          expect(far).not.toMatch(/refused|pod-node/i)
          expect(far).toMatch(/rc=1/)
          expectServiceDrop(walk('pod-node3-2', 'svc/default/node-local'), 'node3', 'default/node-local')
          expect(await connect(netnsOf('pod-node1-2'), '172.21.0.82', 80)).toMatch(/rc=0/)
          expect(walk('pod-node1-2', 'svc/default/node-local').disposition).toBe('DELIVERED')

          // externalTrafficPolicy Local: node3's NodePort drops what comes from node1; node2's answers it
          const np = await connect(netnsOf('node1'), ipOf('node3'), 30082)
          expect(np).not.toMatch(/refused|pod-node/i)
          expect(np).toMatch(/rc=1/)
          expectServiceDrop(walk('node1', 'node3:30082'), 'node3', 'default/web-local')
          expect(await connect(netnsOf('node1'), ipOf('node2'), 30082)).toMatch(/rc=0/)
          expect(walk('node1', 'node2:30082').disposition).toBe('DELIVERED')

          // the command, live on the lab: the Service's finding once, and its fix is not a rule's deletion
          const cli = await netctlJson<Trace>(['trace', 'pod-node3-2', 'svc/default/node-local', '--lab', l.name])
          expect(cli.code).toBe(1)
          expect(cli.json.disposition).toBe('DENIED')
          const codes = cli.json.findings.map((f) => f.code)
          expect(codes).toContain('SERVICE_NO_ENDPOINTS')
          expect(codes).not.toContain('FIREWALL_DROP')
          for (const f of cli.json.findings) expect(f.fix).not.toMatch(/ -D |delete it by its number/)
        },
      )
    })
  }
})
