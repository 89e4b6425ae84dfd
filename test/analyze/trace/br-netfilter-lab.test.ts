/**
 * A client beside a Service's endpoint, against the kernel (2-node flannel-vxlan lab, both kube-proxy
 * modes): with net.bridge.bridge-nf-call-iptables = 0 on node1 (set with sysctl, as an operator would), its
 * connects to the ClusterIP and its DNS queries are answered only by the endpoint on node2: the endpoint
 * beside it answers untranslated, over the bridge, and the client refuses that. netctl's walk reaches the
 * same endpoints both ways, and the other one only there (reply DENIED, BR_NETFILTER_OFF); set back to 1,
 * both endpoints answer, and both walks come back.
 */
import {describe, expect, it} from 'vitest'

import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Trace} from '../../../src/model/trace.js'
import {describeLab, nsExec, useLab} from '../../helpers/lab.js'
import {connectFrom, queryFrom} from '../../helpers/service-traffic.js'
import {collectLab} from './oracle.js'

const LONG = 300_000
const TRIES = 12

/** The pods whose walk comes back (both ways delivered), and those whose reply does not. */
function verdicts(t: Trace): {back: string[]; refused: string[]} {
  const eps = t.endpoints ?? []
  const back = eps.filter((e) => e.disposition === 'DELIVERED' && e.returnDisposition === 'DELIVERED')
  const refused = eps.filter((e) => e.disposition === 'DELIVERED' && e.returnDisposition === 'DENIED')
  return {back: back.map((e) => e.pod!).sort(), refused: refused.map((e) => e.pod!).sort()}
}

const answering = (real: string[]): string[] => [...new Set(real.filter(Boolean))].sort()

describeLab('br_netfilter off beside a Service endpoint: the walk against real connects', () => {
  for (const proxy of ['iptables', 'nftables'] as const) {
    describe(`kube-proxy in ${proxy} mode`, {concurrent: true}, () => {
      const lab = useLab('brnf', ['--nodes', '2', '--pods-per-node', '2', '--proxy-mode', proxy])

      it(
        'only the endpoint on the other node answers, and only its walk comes back; with br_netfilter on, both',
        {timeout: LONG},
        async () => {
          const l = lab.get()
          const node1 = l.nodes.find((n) => n.name === 'node1')!
          const client = l.pods.find((p) => p.name === 'pod-node1-2')!
          const setBrnf = async (v: string): Promise<void> => {
            const r = await nsExec(node1.netns, ['sysctl', '-w', `net.bridge.bridge-nf-call-iptables=${v}`])
            expect(r.code, r.stderr).toBe(0)
          }
          // side by side: kube-proxy picks an endpoint per connection all the same, and an unanswered one waits its seconds
          const atOnce = (ask: () => Promise<string>) => Promise.all(Array.from({length: TRIES}, ask))
          const real = async () => ({
            web: answering(await atOnce(() => connectFrom(client.netns, '172.21.0.80', 80, 2))),
            dns: answering(await atOnce(() => queryFrom(client.netns, '172.21.0.10', 53))),
          })
          const walked = async () => {
            const snap = await collectLab(l.name)
            const walk = (dst: string): Trace => traceSnapshot(snap, {src: client.name, dst, size: 84, df: false}).trace
            return {web: walk('svc/default/web'), dns: walk('dns')}
          }

          await setBrnf('0')
          const off = await real()
          const offWalk = await walked()
          for (const k of ['web', 'dns'] as const) {
            expect(off[k], k).toEqual(['pod-node2-1'])
            expect(verdicts(offWalk[k]), k).toEqual({back: ['pod-node2-1'], refused: ['pod-node1-1']})
            expect(offWalk[k].findings.find((f) => f.code === 'BR_NETFILTER_OFF')).toMatchObject({
              node: 'node1',
              severity: 'error',
            })
          }

          await setBrnf('1')
          const on = await real()
          const onWalk = await walked()
          for (const k of ['web', 'dns'] as const) {
            expect(on[k], k).toEqual(['pod-node1-1', 'pod-node2-1'])
            expect(verdicts(onWalk[k]), k).toEqual({back: ['pod-node1-1', 'pod-node2-1'], refused: []})
          }
        },
      )
    })
  }
})
