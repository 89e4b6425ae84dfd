/**
 * Address translation for real: a plain `iptables -t nat` DNAT on the sender's
 * node sends a port of one pod's address to a pod on another node, and a
 * MASQUERADE hides the sender; the kernel (a TCP connect to a listener in the
 * pod the DNAT names) is the oracle.
 */
import {expect, it} from 'vitest'

import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import {describeLab, type LabUp, nsRun, useLab} from '../../helpers/lab.js'
import {collectLab, tcpConnects} from './oracle.js'

const LONG = 300_000
type Node = LabUp['nodes'][0]

const sh = async (netns: string, ...argv: string[]): Promise<void> => {
  await nsRun(netns, ...argv)
}

describeLab('address translation in the walk: a flannel vxlan lab with a DNAT and a MASQUERADE', () => {
  const lab = useLab('ntnat', ['--backend', 'flannel-vxlan', '--nodes', '3', '--pods-per-node', '1'])

  it(
    "DNAT of pod C's port to pod B on another node, masqueraded: DELIVERED in B, as a real TCP connect; the hops show before → after; the reply is translated back",
    async () => {
      const l = lab.get()
      const [n1, n2, n3] = l.nodes as [Node, Node, Node]
      const pod = (n: Node) => l.pods.find((p) => p.node === n.name)!
      const [a, b, c] = [pod(n1), pod(n2), pod(n3)]
      const port = 9099 // not a port of the lab's Services: their endpoint pods already listen on 8080 and 53
      const dnat = [
        '-t',
        'nat',
        '-A',
        'PREROUTING',
        '-d',
        `${c.ip}/32`,
        '-p',
        'tcp',
        '-m',
        'tcp',
        '--dport',
        String(port),
        '-j',
        'DNAT',
        '--to-destination',
        `${b.ip}:${port}`,
      ]
      const masq = [
        '-t',
        'nat',
        '-A',
        'POSTROUTING',
        '-d',
        `${b.ip}/32`,
        '-p',
        'tcp',
        '-m',
        'tcp',
        '--dport',
        String(port),
        '-j',
        'MASQUERADE',
      ]
      await sh(n1.netns, 'iptables', ...dnat)
      await sh(n1.netns, 'iptables', ...masq)
      // the kernel: a connect to C's address is answered by the listener in B, and B sees the node as the peer
      expect(await tcpConnects(a, {netns: b.netns, ip: c.ip}, port)).toBe(true)
      expect(await tcpConnects(a, {netns: c.netns, ip: c.ip}, port)).toBe(false)

      const snap = await collectLab(l.name)
      const t = traceSnapshot(snap, {src: a.name, dst: c.name, protocol: 'tcp', port, size: 84, df: true}).trace
      expect(t.disposition).toBe('DELIVERED')
      expect(t.hops.at(-1)).toMatchObject({node: n2.name, netns: b.netns, action: 'deliver'})
      expect(t.hops.some((h) => h.node === n3.name)).toBe(false)
      const translated = t.hops.filter((h) => h.netfilter?.nat?.some((x) => x.after))
      expect(translated.map((h) => [h.node, h.netfilter!.hook])).toEqual([
        [n1.name, 'PREROUTING'],
        [n1.name, 'POSTROUTING'],
      ])
      expect(translated[0]!.netfilter!.nat![0]).toMatchObject({
        before: `tcp ${a.ip} → ${c.ip}:${port}`,
        after: `tcp ${a.ip} → ${b.ip}:${port}`,
      })
      expect(translated[0]!.evidence.join('\n')).toContain(
        `-A PREROUTING -d ${c.ip}/32 -p tcp -m tcp --dport ${port} -j DNAT --to-destination ${b.ip}:${port}`,
      )
      // MASQUERADE takes flannel.1's address, the device the packet leaves node1 by
      const vtep = snap.nodeStates[n1.name]!.addresses.find((x) => x.dev === 'flannel.1' && x.family === 'inet')!.local
      expect(translated[1]!.netfilter!.nat![0]).toMatchObject({after: `tcp ${vtep} → ${b.ip}:${port}`})
      // the reply goes from B to the node, which gives it back to A as coming from C
      expect(t.returnPath?.disposition).toBe('DELIVERED')
      const back = t.returnPath!.hops
      expect(back.at(-1)).toMatchObject({node: n1.name, netns: a.netns, action: 'deliver'})
      expect(
        back.filter((h) => h.netfilter?.nat?.[0]?.ruleset === 'conntrack').map((h) => h.netfilter!.nat![0]!.after),
      ).toEqual([`tcp ${b.ip} → ${a.ip}`, `tcp ${c.ip} → ${a.ip}`])
      // without the port, ping (icmp) still goes to C, and so does the trace
      const icmp = traceSnapshot(snap, {src: a.name, dst: c.name, protocol: 'icmp', size: 84, df: true}).trace
      expect(icmp.hops.at(-1)).toMatchObject({node: n3.name, netns: c.netns})
    },
    LONG,
  )
})
