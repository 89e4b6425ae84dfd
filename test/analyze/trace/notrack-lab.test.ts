/**
 * A raw-table notrack rule an operator adds, against the kernel, in both of kube-proxy's modes (2-node
 * flannel-vxlan lab): with node1 untracking pod1's packets to pod2 and to default/web's ClusterIP, the
 * ClusterIP is never translated (the connect fails) and the walk says so; in iptables mode pod2's echo
 * reply and SYN-ACK are INVALID to node1's conntrack and kube-proxy's KUBE-FORWARD drops them (ping and
 * connect fail) while a UDP answer gets through, and the walk agrees, naming the NOTRACK rule; with the
 * replies untracked too, everything passes. In nftables mode kube-proxy drops no INVALID packet: the
 * ping passes, as the walk says. Under Felix (calico-bgp) its workload chain drops the INVALID reply. Felix's own
 * NOTRACK of its VXLAN port (calico-vxlan) leaves the outer packets UNTRACKED at every later hook of the node: an
 * operator's rule on conntrack state sees them so.
 */
import {describe, expect, it} from 'vitest'

import type {Protocol, Trace} from '../../../src/model/trace.js'
import {describeLab, nsExec, ping, twoNodePods, useLab} from '../../helpers/lab.js'
import {queryFrom} from '../../helpers/service-traffic.js'
import {flow} from './fixtures.js'
import {collectLab} from './oracle.js'

const LONG = 300_000
const CLUSTER_IP = '172.21.0.80'

async function connects(netns: string, ip: string, port: number): Promise<boolean> {
  return (await nsExec(netns, ['nc', '-z', '-w', '2', ip, String(port)], 20_000)).code === 0
}

async function run(netns: string, ...argv: string[]): Promise<void> {
  const r = await nsExec(netns, argv)
  expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0)
}

describeLab('raw-table notrack rules: the walk against real packets', () => {
  for (const proxy of ['iptables', 'nftables'] as const) {
    describe(`kube-proxy in ${proxy} mode`, {concurrent: true}, () => {
      const lab = useLab('notrack', ['--nodes', '2', '--pods-per-node', '1', '--proxy-mode', proxy])

      it(
        'untracked requests: the ClusterIP is not translated; the unseen reply is dropped where kube-proxy drops INVALID packets',
        {timeout: LONG},
        async () => {
          const l = lab.get()
          const {n1, p1, p2} = twoNodePods(l)
          expect(await ping(p1.netns, p2.ip)).toBe(true)
          expect(await connects(p1.netns, CLUSTER_IP, 80)).toBe(true)

          // the operator's rules, with the operator's tools
          if (proxy === 'iptables') {
            for (const dst of [p2.ip, CLUSTER_IP])
              await run(n1.netns, 'iptables', '-t', 'raw', '-A', 'PREROUTING', '-s', p1.ip, '-d', dst, '-j', 'NOTRACK')
          } else {
            await run(n1.netns, 'nft', 'add', 'table', 'ip', 'notrack-test')
            await run(
              n1.netns,
              'nft',
              'add chain ip notrack-test prerouting { type filter hook prerouting priority raw; }',
            )
            for (const dst of [p2.ip, CLUSTER_IP])
              await run(
                n1.netns,
                'nft',
                'add',
                'rule',
                'ip',
                'notrack-test',
                'prerouting',
                'ip',
                'saddr',
                p1.ip,
                'ip',
                'daddr',
                dst,
                'notrack',
              )
          }
          const snap = await collectLab(l.name)
          const walk = (dst: string, protocol?: Protocol, port?: number): Trace =>
            flow(snap, p1.name, dst, protocol, port ? {port} : {})

          // the ClusterIP: untranslated in the kernel and in the walk
          expect(await connects(p1.netns, CLUSTER_IP, 80)).toBe(false)
          const svc = walk('svc/default/web')
          expect(svc.translation).toBeNull()
          expect(svc.service).toMatchObject({reached: 0})
          expect(svc.disposition).not.toBe('DELIVERED')
          for (const e of svc.endpoints!) expect(e.note).toContain('the request went untracked on')

          // UDP: the reply is a new connection to conntrack, and passes
          expect(await queryFrom(p1.netns, p2.ip, 53)).not.toBe('')
          const udp = walk(p2.name, 'udp', 53)
          expect([udp.disposition, udp.returnPath?.disposition]).toEqual(['DELIVERED', 'DELIVERED'])

          const echo = walk(p2.name)
          const syn = walk(p2.name, 'tcp', 8080)
          if (proxy === 'iptables') {
            // the echo reply and the SYN-ACK are INVALID on node1: KUBE-FORWARD drops them
            expect(await ping(p1.netns, p2.ip)).toBe(false)
            expect(await connects(p1.netns, p2.ip, 8080)).toBe(false)
            for (const t of [echo, syn]) {
              expect([t.disposition, t.returnPath?.disposition]).toEqual(['DELIVERED', 'DENIED'])
              expect(t.returnPath!.hops.at(-1)).toMatchObject({node: n1.name, findings: ['FIREWALL_DROP']})
              const f = t.findings.find((x) => x.code === 'FIREWALL_DROP')!
              expect(f.subject).toBe('iptables raw: the request untracked')
              expect(f.fix).toContain(`-s ${p1.ip}/32 -d ${p2.ip}/32 -j NOTRACK`)
            }
            // the fix's other way: untrack the replies too
            await run(n1.netns, 'iptables', '-t', 'raw', '-A', 'PREROUTING', '-s', p2.ip, '-d', p1.ip, '-j', 'NOTRACK')
            expect(await ping(p1.netns, p2.ip)).toBe(true)
            expect(await connects(p1.netns, p2.ip, 8080)).toBe(true)
            const again = await collectLab(l.name)
            for (const protocol of ['icmp', 'tcp'] as const) {
              const t = flow(again, p1.name, p2.name, protocol)
              expect([t.disposition, t.returnPath?.disposition], protocol).toEqual(['DELIVERED', 'DELIVERED'])
            }
          } else {
            expect(await ping(p1.netns, p2.ip)).toBe(true)
            expect(await connects(p1.netns, p2.ip, 8080)).toBe(true)
            for (const t of [echo, syn])
              expect([t.disposition, t.returnPath?.disposition]).toEqual(['DELIVERED', 'DELIVERED'])
          }
        },
      )
    })
  }
})

describeLab('raw-table notrack rules under Felix: the walk against real pings', () => {
  const lab = useLab('notrack-cal', ['--nodes', '2', '--pods-per-node', '1', '--backend', 'calico-bgp'])

  it(
    "calico-bgp: the unseen echo reply is INVALID on node1 and Felix's workload chain drops it; untracked both ways it passes",
    {timeout: LONG},
    async () => {
      const l = lab.get()
      const {n1, p1, p2} = twoNodePods(l)
      const notrack = (src: string, dst: string) =>
        run(n1.netns, 'iptables', '-t', 'raw', '-I', 'PREROUTING', '-s', src, '-d', dst, '-j', 'NOTRACK')
      const walk = async (): Promise<Trace> => flow(await collectLab(l.name), p1.name, p2.name)

      await notrack(p1.ip, p2.ip)
      expect(await ping(p1.netns, p2.ip)).toBe(false)
      const t = await walk()
      expect([t.disposition, t.returnPath?.disposition]).toEqual(['DELIVERED', 'DENIED'])
      const f = t.findings.find((x) => x.code === 'FIREWALL_DROP')!
      expect(f.subject).toBe('iptables raw: the request untracked')
      expect(f.message).toMatch(
        /^-A cali-tw-\S+ .*--ctstate INVALID -j DROP \(Felix's chain cali-tw-\S+\) drops the reply/,
      )

      await notrack(p2.ip, p1.ip)
      expect(await ping(p1.netns, p2.ip)).toBe(true)
      const both = await walk()
      expect([both.disposition, both.returnPath?.disposition]).toEqual(['DELIVERED', 'DELIVERED'])
    },
  )
})

describeLab("Felix's NOTRACK of its VXLAN port: the outer packets stay untracked on the node", () => {
  const lab = useLab('notrack-vx', ['--nodes', '2', '--pods-per-node', '1', '--backend', 'calico-vxlan'])

  it(
    'a rule on NEW packets of the VXLAN port does not meet them, one on UNTRACKED ones does; the walk agrees',
    {timeout: LONG},
    async () => {
      const l = lab.get()
      const {n1, n2, p1, p2} = twoNodePods(l)
      const walk = async (): Promise<Trace> => flow(await collectLab(l.name), p1.name, p2.name)
      for (const [state, answered] of [
        ['NEW', true],
        ['UNTRACKED', false],
      ] as const) {
        // on the receiver's INPUT and the sender's OUTPUT alike
        for (const [n, chain] of [
          [n2, 'INPUT'],
          [n1, 'OUTPUT'],
        ] as const) {
          const rule = [chain, '-p', 'udp', '--dport', '4789', '-m', 'conntrack', '--ctstate', state, '-j', 'DROP']
          await run(n.netns, 'iptables', '-I', ...rule)
          try {
            expect(await ping(p1.netns, p2.ip), `${state} on ${n.name} ${chain}`).toBe(answered)
            const t = await walk()
            expect(
              t.disposition === 'DELIVERED' && t.returnPath?.disposition === 'DELIVERED',
              `${state} on ${n.name} ${chain}`,
            ).toBe(answered)
          } finally {
            await run(n.netns, 'iptables', '-D', ...rule)
          }
        }
      }
    },
  )
})
