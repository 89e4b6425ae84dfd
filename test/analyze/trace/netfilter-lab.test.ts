/**
 * Netfilter for real on a calico-vxlan lab: rules put in with plain
 * iptables / ipset / nft commands, exactly as Felix and a host write them, and
 * the kernel (ping) as the oracle for every pod pair.
 */
import {expect, it} from 'vitest'

import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import type {Trace} from '../../../src/model/trace.js'
import {describeLab, type LabUp, nsExec, nsRun, useLab} from '../../helpers/lab.js'
import {collectLab, disagreements, pingPairs} from './oracle.js'

const LONG = 300_000
type Node = LabUp['nodes'][0]

const sh = async (netns: string, ...argv: string[]): Promise<void> => {
  await nsRun(netns, ...argv)
}

/** Collect, trace every pod pair and compare with ping; `check` looks at the traces. */
async function agree(
  l: LabUp,
  check: (snap: Snapshot, trace: (a: string, b: string) => Trace, kernel: (a: string, b: string) => boolean) => void,
): Promise<void> {
  const snap = await collectLab(l.name)
  const results = await pingPairs(l.pods, (a, b) =>
    traceSnapshot(snap, {src: a, dst: b, protocol: 'icmp', size: 84, df: true}),
  )
  expect(disagreements(results)).toEqual([])
  const find = (a: string, b: string) => results.find((r) => r.src.name === a && r.dst.name === b)!
  check(
    snap,
    (a, b) => find(a, b).result.trace,
    (a, b) => find(a, b).kernel,
  )
}

describeLab('netfilter in the walk: a calico vxlan lab with real rules', () => {
  // the rules here are written by hand: a bare dataplane, without the agents' own
  const lab = useLab('nf', [
    '--backend',
    'calico-vxlan',
    '--nodes',
    '2',
    '--pods-per-node',
    '1',
    '--proxy-mode',
    'none',
  ])
  const parts = () => {
    const l = lab.get()
    const [n1, n2] = l.nodes as [Node, Node]
    const pod = (n: Node) => l.pods.find((p) => p.node === n.name)!
    return {l, n1, n2, p1: pod(n1), p2: pod(n2)}
  }

  it(
    "Felix's VXLAN allow/deny pair in cali-INPUT: DELIVERED while ping works; a node missing from the ipset: DENIED at the receiver, as ping",
    async () => {
      const {l, n1, n2, p1, p2} = parts()
      for (const n of [n1, n2]) {
        await sh(n.netns, 'ipset', 'create', 'cali40all-vxlan-net', 'hash:net', 'family', 'inet')
        for (const m of [n1, n2]) await sh(n.netns, 'ipset', 'add', 'cali40all-vxlan-net', m.ip)
        await sh(n.netns, 'iptables', '-N', 'cali-INPUT')
        await sh(
          n.netns,
          'iptables',
          '-A',
          'INPUT',
          '-m',
          'comment',
          '--comment',
          'cali:Cz_u1IQiXIMmKD4c',
          '-j',
          'cali-INPUT',
        )
        await sh(
          n.netns,
          'iptables',
          '-A',
          'cali-INPUT',
          '-p',
          'udp',
          '-m',
          'comment',
          '--comment',
          'Allow IPv4 VXLAN packets from allowed hosts',
          '-m',
          'multiport',
          '--dports',
          '4789',
          '-m',
          'set',
          '--match-set',
          'cali40all-vxlan-net',
          'src',
          '-m',
          'addrtype',
          '--dst-type',
          'LOCAL',
          '-j',
          'ACCEPT',
        )
        await sh(
          n.netns,
          'iptables',
          '-A',
          'cali-INPUT',
          '-p',
          'udp',
          '-m',
          'comment',
          '--comment',
          'Drop IPv4 VXLAN packets from non-allowed hosts',
          '-m',
          'multiport',
          '--dports',
          '4789',
          '-m',
          'addrtype',
          '--dst-type',
          'LOCAL',
          '-j',
          'DROP',
        )
      }
      await agree(l, (_snap, trace, kernel) => {
        expect(kernel(p1.name, p2.name)).toBe(true)
        const t = trace(p1.name, p2.name)
        expect(t.disposition).toBe('DELIVERED')
        expect(
          t.hops.some(
            (h) => h.node === n2.name && h.evidence.some((e) => e.includes('--match-set cali40all-vxlan-net src')),
          ),
        ).toBe(true)
      })
      await sh(n2.netns, 'ipset', 'del', 'cali40all-vxlan-net', n1.ip)
      try {
        await agree(l, (_snap, trace, kernel) => {
          expect(kernel(p1.name, p2.name)).toBe(false)
          const t = trace(p1.name, p2.name)
          expect(t.disposition).toBe('DENIED')
          expect(t.hops.at(-1)).toMatchObject({node: n2.name, action: 'drop'})
          expect(t.hops.at(-1)!.evidence.join('\n')).toContain('Drop IPv4 VXLAN packets from non-allowed hosts')
          expect(t.findings.map((f) => f.code)).toContain('ENCAP_PORT_BLOCKED')
        })
      } finally {
        await sh(n2.netns, 'ipset', 'add', 'cali40all-vxlan-net', n1.ip)
      }
    },
    LONG,
  )

  it(
    'a drop rule in a native nftables table: DENIED with the rule as nft prints it, as ping',
    async () => {
      const {l, n2, p1, p2} = parts()
      await sh(n2.netns, 'nft', 'add', 'table', 'inet', 't')
      try {
        await sh(n2.netns, 'nft', 'add', 'chain', 'inet', 't', 'f', '{ type filter hook forward priority 0; }')
        await sh(n2.netns, 'nft', 'add', 'rule', 'inet', 't', 'f', 'ip', 'daddr', p2.ip, 'drop')
        await agree(l, (_snap, trace, kernel) => {
          expect(kernel(p1.name, p2.name)).toBe(false)
          const t = trace(p1.name, p2.name)
          expect(t.disposition).toBe('DENIED')
          expect(t.hops.at(-1)).toMatchObject({node: n2.name, action: 'drop'})
          expect(t.hops.at(-1)!.evidence).toContain(`ip daddr ${p2.ip} drop`)
          expect(t.findings).toContainEqual(
            expect.objectContaining({code: 'FIREWALL_DROP', node: n2.name, subject: 'nft inet t f'}),
          )
        })
      } finally {
        await sh(n2.netns, 'nft', 'delete', 'table', 'inet', 't')
      }
    },
    LONG,
  )

  it(
    'a drop rule in the legacy iptables beside iptables-nft: DENIED with that rule, as ping',
    async () => {
      const {l, n2, p1, p2} = parts()
      if ((await nsExec(n2.netns, ['iptables-legacy', '-L', '-n'])).code !== 0) return
      await sh(n2.netns, 'iptables-legacy', '-A', 'FORWARD', '-d', `${p2.ip}/32`, '-j', 'DROP')
      try {
        await agree(l, (_snap, trace, kernel) => {
          expect(kernel(p1.name, p2.name)).toBe(false)
          const t = trace(p1.name, p2.name)
          expect(t.disposition).toBe('DENIED')
          expect(t.hops.at(-1)!.evidence.join('\n')).toContain(`-A FORWARD -d ${p2.ip}/32 -j DROP`)
        })
      } finally {
        await sh(n2.netns, 'iptables-legacy', '-D', 'FORWARD', '-d', `${p2.ip}/32`, '-j', 'DROP')
      }
    },
    LONG,
  )
})

describeLab("the agents' own rules broken with plain commands: a calico vxlan lab with kube-proxy and Felix", () => {
  const lab = useLab('nfag', [
    '--backend',
    'calico-vxlan',
    '--nodes',
    '2',
    '--pods-per-node',
    '1',
    '--proxy-mode',
    'iptables',
  ])

  it(
    "Felix's VXLAN accept removed from cali-INPUT: DENIED at the receiver by Felix's drop rule, the finding names Felix, as ping",
    async () => {
      const l = lab.get()
      const [n1, n2] = l.nodes as [Node, Node]
      const p1 = l.pods.find((p) => p.node === n1.name)!
      const p2 = l.pods.find((p) => p.node === n2.name)!
      // healthy: every pair agrees with ping and nothing is left undecided
      await agree(l, (_snap, trace) => {
        for (const a of l.pods)
          for (const b of l.pods) if (a !== b) expect(trace(a.name, b.name).disposition).toBe('DELIVERED')
      })
      const listed = await nsExec(n2.netns, ['iptables', '-S', 'cali-INPUT'])
      const accept = listed.stdout.split('\n').find((x) => x.includes('Allow IPv4 VXLAN packets from allowed hosts'))!
      expect(accept).toBeDefined()
      const argv = accept
        .replace(/^-A /, '-D ')
        .match(/"[^"]*"|\S+/g)!
        .map((x) => x.replace(/^"|"$/g, ''))
      await sh(n2.netns, 'iptables', ...argv)
      try {
        await agree(l, (_snap, trace, kernel) => {
          expect(kernel(p1.name, p2.name)).toBe(false)
          const t = trace(p1.name, p2.name)
          expect(t.disposition).toBe('DENIED')
          expect(t.hops.at(-1)).toMatchObject({node: n2.name, action: 'drop'})
          expect(t.hops.at(-1)!.evidence.join('\n')).toContain('Drop IPv4 VXLAN packets from non-allowed hosts')
          const f = t.findings.find((x) => x.code === 'ENCAP_PORT_BLOCKED')!
          expect(f.message).toContain("(Felix's chain cali-INPUT)")
          expect(f.evidence.join('\n')).toContain('-j DROP')
        })
      } finally {
        // back where it was: its position among the chain's rules
        const pos =
          listed.stdout
            .split('\n')
            .filter((x) => x.startsWith('-A '))
            .indexOf(accept) + 1
        await sh(n2.netns, 'iptables', '-I', 'cali-INPUT', String(pos), ...argv.slice(2))
      }
    },
    LONG,
  )

  it(
    "a node's address missing from Felix's own cali40all-vxlan-net: DENIED at the receiver, as ping",
    async () => {
      const l = lab.get()
      const [n1, n2] = l.nodes as [Node, Node]
      const p1 = l.pods.find((p) => p.node === n1.name)!
      const p2 = l.pods.find((p) => p.node === n2.name)!
      await sh(n2.netns, 'ipset', 'del', 'cali40all-vxlan-net', n1.ip)
      try {
        await agree(l, (_snap, trace, kernel) => {
          expect(kernel(p1.name, p2.name)).toBe(false)
          const t = trace(p1.name, p2.name)
          expect(t.disposition).toBe('DENIED')
          expect(t.hops.at(-1)).toMatchObject({node: n2.name, action: 'drop'})
          expect(t.findings.find((x) => x.code === 'ENCAP_PORT_BLOCKED')?.message).toContain("Felix's chain cali-INPUT")
        })
      } finally {
        await sh(n2.netns, 'ipset', 'add', 'cali40all-vxlan-net', n1.ip)
      }
    },
    LONG,
  )
})
