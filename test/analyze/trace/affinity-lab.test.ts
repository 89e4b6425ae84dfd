/**
 * kube-proxy's ClientIP session affinity against the kernel, in both of its modes (the lab's
 * `default/sticky` Service, 10800 s, as kube-proxy writes it: `-m recent --rcheck … --reap` rules in
 * KUBE-SVC and `-m recent --set` in each KUBE-SEP; nft's `ip saddr @affinity-…` lookups and `update
 * @affinity-… { ip saddr }`). A client that never connected may reach every endpoint; after real
 * connects (each answered by the same pod, the kernel's choice), the walk over a fresh collect sends
 * the client to that pod alone, from the node's own lists (/proc/net/xt_recent with its clock, or the
 * nft set's elements), with no INSUFFICIENT_INFO; another client is still spread over all three.
 * Then the client is taken out of the list with the kernel's own interface (a `-ADDR` write to the
 * xt_recent file, `nft delete element`), and the walk spreads it again.
 */
import {expect, it} from 'vitest'

import type {Snapshot} from '../../../src/model/snapshot.js'
import type {Trace} from '../../../src/model/trace.js'
import {traceSnapshotFile} from '../../../src/services/trace.js'
import {describeLab, nsExec, useLab} from '../../helpers/lab.js'
import {connectFrom} from '../../helpers/service-traffic.js'
import {collectLab} from './oracle.js'

const LONG = 300_000

const trace = (snap: Snapshot, src: string): Trace =>
  traceSnapshotFile(snap, {src, dst: 'svc/default/sticky', protocol: 'tcp', size: 84, df: false}).trace

/** The pods the walk delivers to, both ways. */
const walkedPods = (t: Trace): string[] =>
  (t.endpoints ?? [])
    .filter((e) => e.disposition === 'DELIVERED' && e.returnDisposition === 'DELIVERED')
    .map((e) => e.pod ?? e.ip)
    .sort()

for (const proxy of ['iptables', 'nftables'] as const) {
  describeLab(`ClientIP session affinity, kube-proxy ${proxy} mode`, () => {
    const lab = useLab(`aff${proxy[0]}`, ['--nodes', '3', '--backend', 'flannel-vxlan', '--proxy-mode', proxy])

    it(
      'the walk sends a client back to the endpoint the kernel pinned it to, and only that client',
      {timeout: LONG},
      async () => {
        const {name, pods} = lab.get()
        const client = pods.find((p) => p.name === 'pod-node1-2')!
        const before = trace(await collectLab(name), client.name)
        expect(before.service).toMatchObject({reached: 3, total: 3})
        expect(before.findings.map((f) => f.code)).not.toContain('INSUFFICIENT_INFO')

        const answered = new Set<string>()
        for (let i = 0; i < 5; i++) answered.add(await connectFrom(client.netns, '172.21.0.81', 80, 2))
        expect(answered.size, [...answered].join(' ')).toBe(1)
        const pinned = [...answered][0]!
        expect(pinned).toMatch(/^pod-node\d-1$/)

        const snap = await collectLab(name)
        const after = trace(snap, client.name)
        expect(walkedPods(after)).toEqual([pinned])
        expect(after.endpoints!.find((e) => e.pod === pinned)!.probability).toBe(1)
        expect(after.findings.map((f) => f.code)).not.toContain('INSUFFICIENT_INFO')
        // the rule that decided, and why the others are not walked
        const evidence = after.endpoints!.flatMap((e) => e.hops ?? []).flatMap((h) => h.evidence ?? [])
        expect(evidence.some((l) => (proxy === 'iptables' ? / -m recent --rcheck / : / @affinity-/).test(l))).toBe(true)
        for (const e of after.endpoints!.filter((x) => x.pod !== pinned))
          expect(e.note).toMatch(/^not walked: session affinity sends this client to /)
        // another client has no entry: spread over all three
        expect(trace(snap, 'pod-node2-2').service).toMatchObject({reached: 3, total: 3})

        // the client taken out of the lists, with the kernel's own interfaces
        const ip = client.ip
        const node1 = `${name}.node1`
        if (proxy === 'iptables') {
          const lists = (await nsExec(node1, ['sh', '-c', 'ls /proc/net/xt_recent'])).stdout
            .split(/\s+/)
            .filter(Boolean)
          for (const list of lists) await nsExec(node1, ['sh', '-c', `echo -${ip} > /proc/net/xt_recent/${list}`])
        } else {
          const sets = (await nsExec(node1, ['nft', 'list', 'sets', 'ip'])).stdout.match(/affinity-\S+/g) ?? []
          for (const set of sets)
            await nsExec(node1, ['sh', '-c', `nft delete element ip kube-proxy '${set}' '{ ${ip} }' 2>/dev/null; true`])
        }
        expect(trace(await collectLab(name), client.name).service).toMatchObject({reached: 3, total: 3})
      },
    )
  })
}
