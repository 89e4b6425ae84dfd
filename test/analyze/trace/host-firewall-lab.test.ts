/**
 * A node's own firewall rules, as an operator adds them with iptables and nft, against the kernel (2-node
 * flannel-vxlan lab, kube-proxy in iptables mode): ICMP types, TCP flags (the SYN passes, the SYN-ACK
 * does not), rate limits, packet type, TTL as each node's FORWARD sees it (the request's and the reply's),
 * length, DSCP, an address range on the VXLAN port, and a native nftables table with a forward policy of
 * drop. For each rule set, a ping, a TCP connect and a UDP query from pod1 to pod2 are tried for real and
 * walked on a fresh collection: each walk must be delivered both ways exactly when the real packet was
 * answered, and no walk may be unsure of a rule. A TTL rule through a Service shows the kernel bridging a frame
 * translated to an endpoint behind the same bridge (TTL kept) and routing one to the other node. Then a ufw node (`--host-profile ufw`): healthy it carries
 * everything with no error found; a `ufw route deny` rule's drop and the overlay's port closed are walked as the
 * kernel drops them, with ufw's own fix. A firewalld node without the overlay's port open: check and trace both
 * find it. host-firewall.test.ts has the same matches on fixtures.
 */
import {expect, it} from 'vitest'

import {runChecks} from '../../../src/analyze/checks/run.js'
import type {Finding} from '../../../src/model/finding.js'
import type {Protocol, Trace} from '../../../src/model/trace.js'
import {describeLab, nsExec, twoNodePods, useLab} from '../../helpers/lab.js'
import {answers, connectFrom, queryFrom} from '../../helpers/service-traffic.js'
import {flow} from './fixtures.js'
import {collectLab} from './oracle.js'

const LONG = 300_000
const WEB = '172.21.0.80'
const PROTOCOLS = ['icmp', 'tcp', 'udp'] as const
type Answered = Record<(typeof PROTOCOLS)[number], boolean>

async function run(netns: string, ...argv: string[]): Promise<void> {
  const r = await nsExec(netns, argv)
  expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0)
}

/** A ping of `size` bytes of IP packet, a TCP connect to 8080, a UDP query to 53: which were answered. */
async function kernel(netns: string, ip: string, size = 84): Promise<Answered> {
  const ping = await nsExec(netns, ['ping', '-n', '-q', '-c', '1', '-W', '2', '-s', String(size - 28), ip], 10_000)
  const tcp = await nsExec(netns, ['nc', '-z', '-w', '2', ip, '8080'], 20_000)
  return {icmp: ping.code === 0, tcp: tcp.code === 0, udp: (await queryFrom(netns, ip, 53)) !== ''}
}

interface Case {
  what: string
  /** the rules, each an iptables argv after `-I`/`-D` (chain first), on a node (0: node1, 1: node2) */
  iptables?: Array<[node: 0 | 1, ...argv: string[]]>
  /** an nft script loaded on node1 (table inet hostfw), deleted after */
  nft?: string
  /** what the kernel answers, as this case means it to */
  answered: Answered
  size?: number
  /** the finding a walk that stops raises (FIREWALL_DROP unless said) */
  finding?: string
}

describeLab("a host firewall's header matches: the walk against real packets", () => {
  const lab = useLab('hostfw', ['--nodes', '2', '--pods-per-node', '2'])

  it(
    'each rule set: the walk is delivered both ways exactly when the kernel answered, and sure of every rule',
    {timeout: LONG},
    async () => {
      const l = lab.get()
      const {n1, p1, p2} = twoNodePods(l)
      const all = {icmp: true, tcp: true, udp: true}
      const cases: Case[] = [
        {
          what: 'an ICMP type',
          iptables: [[0, 'FORWARD', '-p', 'icmp', '-m', 'icmp', '--icmp-type', 'echo-request', '-j', 'DROP']],
          answered: {icmp: false, tcp: true, udp: true},
        },
        {
          what: 'TCP flags: the SYN-ACK',
          iptables: [[0, 'FORWARD', '-p', 'tcp', '-m', 'tcp', '--tcp-flags', 'SYN,ACK', 'SYN,ACK', '-j', 'DROP']],
          answered: {icmp: true, tcp: false, udp: true},
        },
        {
          what: 'a new connection that is no SYN',
          iptables: [[1, 'FORWARD', '-p', 'tcp', '-m', 'conntrack', '--ctstate', 'NEW', '!', '--syn', '-j', 'DROP']],
          answered: all,
        },
        {
          what: 'ICMP under a rate limit, the rest of ICMP dropped',
          iptables: [
            [0, 'FORWARD', '-p', 'icmp', '-j', 'DROP'],
            [0, 'FORWARD', '-p', 'icmp', '-m', 'limit', '--limit', '20/sec', '-j', 'ACCEPT'],
          ],
          answered: all,
        },
        {
          what: 'connlimit: one connection is not above 10',
          iptables: [[1, 'FORWARD', '-p', 'tcp', '-m', 'connlimit', '--connlimit-above', '10', '-j', 'DROP']],
          answered: all,
        },
        {
          what: 'connlimit: one connection is within 10',
          iptables: [[1, 'FORWARD', '-p', 'tcp', '-m', 'connlimit', '--connlimit-upto', '10', '-j', 'DROP']],
          answered: {icmp: true, tcp: false, udp: true},
        },
        {
          what: "TTL 63 on node2: the reply's, after node2 took one",
          iptables: [[1, 'FORWARD', '-p', 'icmp', '-m', 'ttl', '--ttl-eq', '63', '-j', 'DROP']],
          answered: {icmp: false, tcp: true, udp: true},
        },
        {
          what: "TTL 62 on node2: the request's, after node1 and node2 took one each",
          iptables: [[1, 'FORWARD', '-m', 'ttl', '--ttl-eq', '62', '-j', 'DROP']],
          answered: {icmp: false, tcp: false, udp: false},
        },
        {
          what: 'not unicast',
          iptables: [[0, 'FORWARD', '-m', 'pkttype', '!', '--pkt-type', 'unicast', '-j', 'DROP']],
          answered: all,
        },
        {
          what: 'a DSCP other than 0',
          iptables: [[0, 'FORWARD', '-m', 'dscp', '!', '--dscp', '0', '-j', 'DROP']],
          answered: all,
        },
        {
          what: 'length: a small ping passes',
          iptables: [[0, 'FORWARD', '-m', 'length', '--length', '1000:65535', '-j', 'DROP']],
          answered: all,
        },
        {
          what: 'length: a 1228-byte ping does not',
          iptables: [[0, 'FORWARD', '-p', 'icmp', '-m', 'length', '--length', '1000:65535', '-j', 'DROP']],
          answered: {icmp: false, tcp: true, udp: true},
          size: 1228,
        },
        {
          what: "VXLAN from node1's address (an iprange on node2's INPUT)",
          iptables: [
            [
              1,
              'INPUT',
              '-p',
              'udp',
              '--dport',
              '8472',
              '-m',
              'iprange',
              '--src-range',
              `${n1.ip}-${n1.ip}`,
              '-j',
              'DROP',
            ],
          ],
          answered: {icmp: false, tcp: false, udp: false},
          finding: 'ENCAP_PORT_BLOCKED',
        },
        {
          what: 'a native table, forward policy drop: tracked replies, echo requests, rate-limited SYNs, UDP',
          nft: [
            'table inet hostfw {',
            '  chain forward {',
            '    type filter hook forward priority filter; policy drop;',
            '    ct state established,related accept',
            '    icmp type echo-request accept',
            '    tcp flags syn / fin,syn,rst,ack limit rate 50/second ct count 100 accept',
            '    tcp dport != 5201 drop',
            '    meta l4proto udp accept',
            '  }',
            '}',
          ].join('\n'),
          answered: all,
        },
        {
          what: 'a native table dropping echo requests by ICMP type and SYN-ACKs by flags',
          nft: [
            'table inet hostfw {',
            '  chain forward {',
            '    type filter hook forward priority filter; policy accept;',
            '    icmp type echo-request drop',
            '    tcp flags & (syn|ack) == syn|ack drop',
            '  }',
            '}',
          ].join('\n'),
          answered: {icmp: false, tcp: false, udp: true},
        },
      ]

      const nodeOf = (i: 0 | 1) => l.nodes[i]!.netns
      for (const c of cases) {
        for (const [node, ...argv] of c.iptables ?? []) await run(nodeOf(node), 'iptables', '-I', ...argv)
        if (c.nft !== undefined) await run(n1.netns, 'nft', c.nft)
        try {
          const answered = await kernel(p1.netns, p2.ip, c.size)
          expect(answered, `${c.what}: the kernel`).toEqual(c.answered)
          const snap = await collectLab(l.name)
          for (const protocol of PROTOCOLS) {
            const t = flow(snap, p1.name, p2.name, protocol, {size: c.size ?? 84})
            const delivered = t.disposition === 'DELIVERED' && t.returnPath?.disposition === 'DELIVERED'
            expect(delivered, `${c.what}, ${protocol}: ${t.disposition} / ${t.returnPath?.disposition}`).toBe(
              answered[protocol],
            )
            expect(
              [t.disposition, t.returnPath?.disposition, ...t.findings.map((f) => f.code)],
              `${c.what}, ${protocol}`,
            ).not.toContain('INSUFFICIENT_INFO')
            if (!delivered) expect(t.findings.map((f) => f.code)).toContain(c.finding ?? 'FIREWALL_DROP')
          }
        } finally {
          for (const [node, ...argv] of c.iptables ?? []) await run(nodeOf(node), 'iptables', '-D', ...argv)
          if (c.nft !== undefined) await run(n1.netns, 'nft', 'delete table inet hostfw')
        }
      }
    },
  )

  it(
    "TTL through a Service: to the endpoint behind the same bridge the frame is bridged (br_netfilter's bridged DNAT, TTL kept), to the other node's it is routed",
    {timeout: LONG},
    async () => {
      const l = lab.get()
      const {n1} = twoNodePods(l)
      // default/web's endpoints are pod-node1-1 and pod-node2-1; pod-node1-2 is a plain client on node1
      const client = l.pods.find((p) => p.name === 'pod-node1-2')!
      for (const [ttl, answering] of [
        [63, 'pod-node1-1'],
        [64, 'pod-node2-1'],
      ] as const) {
        const rule = ['FORWARD', '-p', 'tcp', '-m', 'ttl', '--ttl-eq', String(ttl), '-j', 'DROP']
        await run(n1.netns, 'iptables', '-I', ...rule)
        try {
          const got = new Set(await answers(12, () => connectFrom(client.netns, WEB, 80, 2)))
          expect([...got].sort(), `TTL ${ttl} dropped`).toEqual(['', answering])
          const t = flow(await collectLab(l.name), client.name, 'svc/default/web')
          const walked = Object.fromEntries(t.endpoints!.map((e) => [e.pod, e.disposition]))
          expect(walked, `TTL ${ttl} dropped`).toEqual(
            answering === 'pod-node1-1'
              ? {'pod-node1-1': 'DELIVERED', 'pod-node2-1': 'DENIED'}
              : {'pod-node1-1': 'DENIED', 'pod-node2-1': 'DELIVERED'},
          )
        } finally {
          await run(n1.netns, 'iptables', '-D', ...rule)
        }
      }
    },
  )

  it(
    "nft's reverse path filter (fib saddr . iif oif missing drop): passes a symmetric path; strict, drops a request whose source routes back elsewhere; loose, lets it be",
    {timeout: LONG},
    async () => {
      const l = lab.get()
      const {n1, n2, p1, p2} = twoNodePods(l)
      const rpf = (rule: string) => `table inet rpf { chain p { type filter hook prerouting priority raw; ${rule}; }; }`
      const asymmetric = ['ip', 'route', 'add', `${p1.ip}/32`, 'via', n1.ip, 'dev', 'eth0']
      const check = async (what: string, answered: boolean, rule: string) => {
        expect(await kernel(p1.netns, p2.ip), what).toEqual({icmp: answered, tcp: answered, udp: answered})
        const snap = await collectLab(l.name)
        for (const protocol of PROTOCOLS) {
          const t = flow(snap, p1.name, p2.name, protocol)
          expect(
            t.disposition === 'DELIVERED' && t.returnPath?.disposition === 'DELIVERED',
            `${what}, ${protocol}`,
          ).toBe(answered)
          expect(
            t.findings.map((f) => f.code),
            `${what}, ${protocol}`,
          ).not.toContain('INSUFFICIENT_INFO')
          if (!answered) expect(t.hops.at(-1)!.evidence, `${what}, ${protocol}`).toContain(rule)
        }
      }
      const strict = 'fib saddr . iif oif missing drop'
      await run(n2.netns, 'nft', rpf(strict))
      try {
        await check('strict, symmetric', true, strict)
        await run(n2.netns, ...asymmetric)
        try {
          await check('strict, the source routed back by eth0', false, strict)
          await run(n2.netns, 'nft', 'delete table inet rpf')
          await run(n2.netns, 'nft', rpf('fib saddr oif missing drop'))
          await check('loose, the source routed back by eth0', true, 'fib saddr oif missing drop')
        } finally {
          await run(n2.netns, 'ip', 'route', 'del', `${p1.ip}/32`)
        }
      } finally {
        await run(n2.netns, 'nft', 'delete table inet rpf')
      }
    },
  )
})

describeLab('ufw on the nodes: the walk against real packets', () => {
  const lab = useLab('ufw', ['--nodes', '2', '--pods-per-node', '1', '--host-profile', 'ufw'])

  it(
    "healthy, a user's route deny, the overlay's port closed: as the kernel answers, with ufw's fix",
    {timeout: LONG},
    async () => {
      const l = lab.get()
      const {n1, n2, p1, p2} = twoNodePods(l)
      const walkAll = async (): Promise<Record<(typeof PROTOCOLS)[number], Trace>> => {
        const snap = await collectLab(l.name)
        const t = (protocol: Protocol): Trace => flow(snap, p1.name, p2.name, protocol)
        return {icmp: t('icmp'), tcp: t('tcp'), udp: t('udp')}
      }
      const delivered = (t: Trace): boolean =>
        t.disposition === 'DELIVERED' && t.returnPath?.disposition === 'DELIVERED'

      expect(await kernel(p1.netns, p2.ip)).toEqual({icmp: true, tcp: true, udp: true})
      const healthy = await walkAll()
      for (const protocol of PROTOCOLS) {
        expect(delivered(healthy[protocol]), protocol).toBe(true)
        expect(healthy[protocol].findings.filter((f) => f.severity === 'error')).toEqual([])
      }

      // `ufw route deny proto tcp to P2 port 8080` on node1, as ufw writes it into its user chain
      const deny = ['ufw-user-forward', '-d', `${p2.ip}/32`, '-p', 'tcp', '-m', 'tcp', '--dport', '8080', '-j', 'DROP']
      await run(n1.netns, 'iptables', '-A', ...deny)
      expect(await kernel(p1.netns, p2.ip)).toEqual({icmp: true, tcp: false, udp: true})
      const denied = await walkAll()
      expect([delivered(denied.icmp), delivered(denied.tcp), delivered(denied.udp)]).toEqual([true, false, true])
      const f = denied.tcp.findings.find((x) => x.code === 'FIREWALL_DROP')!
      expect(f.message).toContain("(ufw's chain ufw-user-forward)")
      expect(f.fix).toContain(`ufw route allow proto tcp from ${p1.ip} to ${p2.ip} port 8080`)
      expect(f.fix).toContain('ufw delete NUMBER')
      await run(n1.netns, 'iptables', '-D', ...deny)

      // the overlay's port no longer allowed on node2: its INPUT policy drops the VXLAN packets
      const vxlan = ['ufw-user-input', '-p', 'udp', '-m', 'udp', '--dport', '8472', '-j', 'ACCEPT']
      await run(n2.netns, 'iptables', '-D', ...vxlan)
      try {
        expect(await kernel(p1.netns, p2.ip)).toEqual({icmp: false, tcp: false, udp: false})
        const closed = await walkAll()
        for (const protocol of PROTOCOLS) {
          expect(delivered(closed[protocol]), protocol).toBe(false)
          const blocked = closed[protocol].findings.filter((x) => x.code === 'ENCAP_PORT_BLOCKED')
          expect(blocked.length, protocol).toBeGreaterThan(0)
          expect(blocked.flatMap((x) => x.evidence)).toContain('-P INPUT DROP')
          // the walk's finding and the check's alike: ufw's command, not an iptables rule ufw would drop
          for (const x of blocked)
            expect(x.fix, protocol).toContain(`ufw allow proto udp from ${n1.ip} to any port 8472`)
        }
      } finally {
        await run(n2.netns, 'iptables', '-A', ...vxlan)
      }
    },
  )
})

describeLab('firewalld on the nodes: the overlay port, by check and by trace, against real packets', () => {
  const lab = useLab('fwd', ['--nodes', '2', '--pods-per-node', '1', '--host-profile', 'firewalld'])

  it(
    "healthy it says nothing; without 8472/udp open on node2, check and trace both find firewalld's zone rejecting the overlay",
    {timeout: LONG},
    async () => {
      const l = lab.get()
      const {n2, p1, p2} = twoNodePods(l)
      const blocked = async (): Promise<Finding[]> =>
        runChecks(await collectLab(l.name)).filter((f) => f.code === 'ENCAP_PORT_BLOCKED')
      expect(await kernel(p1.netns, p2.ip)).toEqual({icmp: true, tcp: true, udp: true})
      expect(await blocked()).toEqual([])

      // the rule opening the overlay's port, deleted by its handle as an operator would
      const listing = await nsExec(n2.netns, [
        'nft',
        '-a',
        'list',
        'chain',
        'inet',
        'firewalld',
        'filter_IN_public_allow',
      ])
      const handle = /udp dport 8472 accept # handle (\d+)/.exec(listing.stdout)?.[1]
      expect(handle, listing.stdout).toBeDefined()
      await run(n2.netns, 'nft', 'delete', 'rule', 'inet', 'firewalld', 'filter_IN_public_allow', 'handle', handle!)
      try {
        expect(await kernel(p1.netns, p2.ip)).toEqual({icmp: false, tcp: false, udp: false})
        const snap = await collectLab(l.name)
        const found = runChecks(snap).filter((f) => f.code === 'ENCAP_PORT_BLOCKED')
        expect(found.map((f) => [f.node, f.subject])).toEqual([['node2', 'udp 8472 (INPUT, nft inet firewalld)']])
        expect(found[0]!.fix).toContain('firewall-cmd --permanent --add-port=8472/udp')
        const t = flow(snap, p1.name, p2.name)
        expect(t.disposition).toBe('DENIED')
        const walked = t.findings.filter((f) => f.code === 'ENCAP_PORT_BLOCKED')
        expect(walked.length).toBeGreaterThan(0)
        for (const f of walked) expect(f.fix).toContain('firewall-cmd --permanent --add-port=8472/udp')
      } finally {
        await run(
          n2.netns,
          'nft',
          'add',
          'rule',
          'inet',
          'firewalld',
          'filter_IN_public_allow',
          'udp',
          'dport',
          '8472',
          'accept',
        )
      }
      expect(await kernel(p1.netns, p2.ip)).toEqual({icmp: true, tcp: true, udp: true})
      expect(await blocked()).toEqual([])
    },
  )
})
