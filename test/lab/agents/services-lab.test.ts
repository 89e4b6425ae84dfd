/**
 * The Service findings against a real dataplane: a flannel-vxlan lab with
 * kube-proxy's rules (iptables mode, then nftables mode), faults injected
 * with plain commands in the node namespaces, each found by `netctl check
 * --lab` on the right node with the lines that prove it, and real traffic
 * (DNS queries and TCP connects from the pods to the ClusterIPs) agreeing.
 */
import {expect, it} from 'vitest'

import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Trace} from '../../../src/model/trace.js'
import {collectLab} from '../../analyze/trace/oracle.js'
import {netctlJson} from '../../helpers/cli.js'
import {describeLab, type LabUp, nsExec, useLab} from '../../helpers/lab.js'
import {answers, connectFrom} from '../../helpers/service-traffic.js'

const DNS_IP = '172.21.0.10'
const WEB_IP = '172.21.0.80'
const NO_ENDPOINTS_IP = '172.21.0.99'
const SERVICE_CODES = [
  'SERVICE_NO_ENDPOINTS',
  'SERVICE_RULES_STALE',
  'CONNTRACK_STALE',
  'CONNTRACK_TABLE_FULL',
  'HAIRPIN_OFF',
  'KUBE_PROXY_MISSING',
]

interface Finding {
  code: string
  severity: string
  node?: string
  subject: string
  message: string
  evidence: string[]
  fix: string
}

async function serviceFindings(lab: string): Promise<Finding[]> {
  const r = await netctlJson<{findings: Finding[]}>(['check', '--lab', lab])
  expect(r.json.findings, r.stderr).toBeDefined()
  return r.json.findings.filter((f) => SERVICE_CODES.includes(f.code))
}

const summary = (fs: Finding[]) => fs.map((f) => `${f.code} ${f.node ?? '-'} ${f.subject}`).sort()

/**
 * One DNS-shaped UDP query to the cluster DNS ClusterIP; the answering pod's name ('' without an
 * answer within `waitS` seconds). nc stops at the first answer (-W 1), so a query that must be
 * answered can wait 3 s at no cost: on a loaded machine an answer (from socat then, a fork and an
 * exec) took over the 1 s socat -t1 gave it once in CI. One expected lost waits 1 s.
 */
async function dnsFrom(netns: string, sport?: number, waitS = 3): Promise<string> {
  const r = await nsExec(
    netns,
    ['sh', '-c', `echo q | nc -u -W 1 -w ${waitS}${sport ? ` -p ${sport}` : ''} ${DNS_IP} 53`],
    10_000 + waitS * 1000,
  )
  return r.stdout.trim()
}

const pod = (l: LabUp, name: string) => l.pods.find((p) => p.name === name)!
const nodeNs = (l: LabUp, name: string) => l.nodes.find((n) => n.name === name)!.netns

/** A fix as printed for a lab node, run line by line as a user pastes it. */
async function runFix(fix: string): Promise<void> {
  for (const line of fix.split('\n').filter((x) => x.trim() !== '' && !x.trim().startsWith('#'))) {
    const words = line.split(' ')
    expect(words.slice(0, 3), line).toEqual(['ip', 'netns', 'exec'])
    const done = await nsExec(words[3]!, words.slice(4))
    expect(done.code, `${line}: ${done.stderr}`).toBe(0)
  }
}

describeLab('Service findings in a lab, kube-proxy iptables mode', () => {
  const lab = useLab('sq-svc-ipt', [
    '--nodes',
    '2',
    '--pods-per-node',
    '2',
    '--backend',
    'flannel-vxlan',
    '--proxy-mode',
    'iptables',
  ])

  it('healthy: only the Service without endpoints, rejected by every node as the real connect is', async () => {
    const l = lab.get()
    const f = await serviceFindings(l.name)
    expect(summary(f)).toEqual(['SERVICE_NO_ENDPOINTS - Service default/no-endpoints'])
    expect(f[0]!.evidence.join('\n')).toMatch(
      /node2 iptables-save: -A KUBE-SERVICES -d 172\.21\.0\.99\/32 .* -j REJECT/,
    )
    const refused = await nsExec(pod(l, 'pod-node1-2').netns, [
      'sh',
      '-c',
      `nc -v -z -w 2 ${NO_ENDPOINTS_IP} 80 2>&1; echo rc=$?`,
    ])
    expect(refused.stdout).toMatch(/refused/i)
    // the Service answers from both of its endpoints
    expect(new Set(await answers(12, () => dnsFrom(pod(l, 'pod-node1-2').netns)))).toEqual(
      new Set(['pod-node1-1', 'pod-node2-1']),
    )
  })

  it("the probe reads the node's own conntrack count and the Service flows only (translated ones)", async () => {
    const l = lab.get()
    await answers(4, () => dnsFrom(pod(l, 'pod-node1-2').netns))
    const r = await netctlJson<{
      nodeStates: Record<
        string,
        {
          conntrack?: {
            count?: number
            max?: number
            filter?: string
            entries: Array<{orig: {dst: string}; reply: {src: string}}>
          }
        }
      >
    }>(['collect', '--lab', l.name])
    const ct = r.json.nodeStates.node1!.conntrack!
    expect(ct.filter).toBe('dnat')
    expect(ct.entries.length).toBeGreaterThan(0)
    for (const e of ct.entries) expect(e.reply.src).not.toBe(e.orig.dst)
    expect(ct.entries.some((e) => e.orig.dst === DNS_IP)).toBe(true)
    // nf_conntrack_count is per namespace; nf_conntrack_max is the machine's (read-only in a child netns on this kernel)
    const own = Number((await nsExec(nodeNs(l, 'node1'), ['cat', '/proc/sys/net/netfilter/nf_conntrack_count'])).stdout)
    expect(Math.abs(ct.count! - own)).toBeLessThan(20)
    expect(ct.max).toBe(
      Number((await nsExec(nodeNs(l, 'node1'), ['cat', '/proc/sys/net/netfilter/nf_conntrack_max'])).stdout),
    )
  })

  it("a KUBE-SEP DNAT deleted on node2: SERVICE_RULES_STALE names node2 and the endpoint, and node2's pods never reach it", async () => {
    const l = lab.get()
    const ns = nodeNs(l, 'node2')
    const ep = pod(l, 'pod-node1-1').ip
    const rules = (await nsExec(ns, ['iptables', '-t', 'nat', '-S'])).stdout.split('\n')
    const dnat = rules.find(
      (x) =>
        x.startsWith('-A KUBE-SEP-') &&
        x.includes('"kube-system/kube-dns:dns"') &&
        x.includes(`--to-destination ${ep}:53`),
    )!
    const chain = dnat.split(' ')[1]!
    // the chain's second rule is its DNAT (the first marks for masquerade)
    expect((await nsExec(ns, ['iptables', '-t', 'nat', '-D', chain, '2'])).code).toBe(0)
    const f = (await serviceFindings(l.name)).filter((x) => x.code === 'SERVICE_RULES_STALE')
    expect(summary(f)).toEqual(['SERVICE_RULES_STALE node2 Service kube-system/kube-dns:dns (172.21.0.10 udp/53)'])
    expect(f[0]!.message).toContain(`no rule sends to ${ep}:53 (in the EndpointSlices)`)
    // kernel: from node2 every query falls through to the other endpoint; from node1 both still answer
    expect(new Set(await answers(10, () => dnsFrom(pod(l, 'pod-node2-2').netns)))).toEqual(new Set(['pod-node2-1']))
  })

  it('a stale UDP conntrack entry toward a dead address on node1: CONNTRACK_STALE with the conntrack -D line, which makes the query work again', async () => {
    const l = lab.get()
    const client = pod(l, 'pod-node1-2')
    const dead = '172.20.1.99'
    const ins = await nsExec(nodeNs(l, 'node1'), [
      'conntrack',
      '-I',
      '-p',
      'udp',
      '-s',
      client.ip,
      '-d',
      DNS_IP,
      '--sport',
      '40053',
      '--dport',
      '53',
      '-r',
      dead,
      '-q',
      client.ip,
      '--reply-port-src',
      '53',
      '--reply-port-dst',
      '40053',
      '-t',
      '120',
      '-u',
      'SEEN_REPLY',
    ])
    expect(ins.code, ins.stderr).toBe(0)
    // kernel: the client's queries from that port go to the dead address
    expect(await dnsFrom(client.netns, 40053, 1)).toBe('')
    const f = (await serviceFindings(l.name)).filter((x) => x.code === 'CONNTRACK_STALE')
    expect(summary(f)).toEqual([`CONNTRACK_STALE node1 kube-system/kube-dns:dns → ${dead}:53`])
    expect(f[0]!.severity).toBe('error')
    expect(f[0]!.evidence.join('\n')).toContain(`src=${client.ip} dst=${DNS_IP} sport=40053 dport=53 src=${dead}`)
    expect(f[0]!.fix.split('\n').at(-1)).toBe(
      `ip netns exec ${nodeNs(l, 'node1')} conntrack -D -p udp --orig-src ${client.ip} --orig-dst ${DNS_IP} --sport 40053 --dport 53 --reply-src ${dead}`,
    )
    await runFix(f[0]!.fix)
    expect(['pod-node1-1', 'pod-node2-1']).toContain(await dnsFrom(client.netns, 40053))
    expect((await serviceFindings(l.name)).filter((x) => x.code === 'CONNTRACK_STALE')).toEqual([])
  })

  it("hairpin off on an endpoint pod's cni0 port: HAIRPIN_OFF, and the pod never reaches itself through its Service until the fix", async () => {
    const l = lab.get()
    const self = pod(l, 'pod-node1-1')
    const port = (await nsExec(nodeNs(l, 'node1'), ['ip', '-o', 'link', 'show', 'master', 'cni0'])).stdout
      .split('\n')
      .map((x) => x.split(': ')[1]?.split('@')[0])
      .filter((x): x is string => !!x)
    // the port whose peer is the pod's eth0
    const peer = (await nsExec(self.netns, ['cat', '/sys/class/net/eth0/iflink'])).stdout.trim()
    const dev = (await nsExec(nodeNs(l, 'node1'), ['ip', '-o', 'link'])).stdout
      .split('\n')
      .find((x) => x.startsWith(`${peer}: `))!
      .split(': ')[1]!
      .split('@')[0]!
    expect(port).toContain(dev)
    expect(
      (await nsExec(nodeNs(l, 'node1'), ['ip', 'link', 'set', dev, 'type', 'bridge_slave', 'hairpin', 'off'])).code,
    ).toBe(0)
    const f = (await serviceFindings(l.name)).filter((x) => x.code === 'HAIRPIN_OFF')
    expect(summary(f)).toEqual([`HAIRPIN_OFF node1 pod default/pod-node1-1 (${dev} on cni0)`])
    const off = await answers(12, () => connectFrom(self.netns, WEB_IP, 80))
    expect(off).not.toContain('pod-node1-1')
    expect(off).toContain('')
    // the walk agrees: br_netfilter bridges the packet back out of the pod's own port, which drops it
    const walkSelf = async (): Promise<Trace> =>
      traceSnapshot(await collectLab(l.name), {src: self.name, dst: 'svc/default/web', size: 84, df: false}).trace
    const blocked = (await walkSelf()).endpoints!.find((e) => e.pod === 'pod-node1-1')!
    expect(blocked).toMatchObject({disposition: 'NEIGHBOR_UNRESOLVED', findings: ['HAIRPIN_OFF']})

    // with br_netfilter off the packet is routed out of cni0 itself: no hairpin needed, the pod reaches itself
    const brnf = (v: string) => nsExec(nodeNs(l, 'node1'), ['sysctl', '-w', `net.bridge.bridge-nf-call-iptables=${v}`])
    expect((await brnf('0')).code).toBe(0)
    try {
      expect(await answers(12, () => connectFrom(self.netns, WEB_IP, 80))).toContain('pod-node1-1')
      expect((await serviceFindings(l.name)).filter((x) => x.code === 'HAIRPIN_OFF')).toEqual([])
      const routed = (await walkSelf()).endpoints!.find((e) => e.pod === 'pod-node1-1')!
      expect([routed.disposition, routed.returnDisposition]).toEqual(['DELIVERED', 'DELIVERED'])
    } finally {
      expect((await brnf('1')).code).toBe(0)
    }
    await runFix(f[0]!.fix)
    expect(await answers(20, () => connectFrom(self.netns, WEB_IP, 80))).toContain('pod-node1-1')
  })

  it("every kube-proxy chain flushed on node2: KUBE_PROXY_MISSING there (not a stale rule per Service), and node2's pods reach no Service", async () => {
    const l = lab.get()
    const ns = nodeNs(l, 'node2')
    for (const table of ['nat', 'filter']) {
      const chains = (await nsExec(ns, ['iptables', '-t', table, '-S'])).stdout
        .split('\n')
        .filter((x) => x.startsWith('-N KUBE-'))
        .map((x) => x.split(' ')[1]!)
      for (const c of chains) expect((await nsExec(ns, ['iptables', '-t', table, '-F', c])).code).toBe(0)
    }
    const f = await serviceFindings(l.name)
    expect(summary(f.filter((x) => x.node === 'node2'))).toEqual(['KUBE_PROXY_MISSING node2 kube-proxy on node2'])
    expect(f.find((x) => x.code === 'KUBE_PROXY_MISSING')!.evidence).toContain(
      'node2 iptables-save -t nat: :KUBE-SERVICES - [0:0] and no rule in it (flushed)',
    )
    expect(await answers(3, () => dnsFrom(pod(l, 'pod-node2-2').netns, undefined, 1))).toEqual(['', '', ''])
  })
})

describeLab('Service findings in a lab, kube-proxy nftables mode', () => {
  const lab = useLab('sq-svc-nft', [
    '--nodes',
    '2',
    '--pods-per-node',
    '2',
    '--backend',
    'flannel-vxlan',
    '--proxy-mode',
    'nftables',
  ])

  it('healthy: only the Service without endpoints (its no-endpoint-services element as evidence)', async () => {
    const f = await serviceFindings(lab.get().name)
    expect(summary(f)).toEqual(['SERVICE_NO_ENDPOINTS - Service default/no-endpoints'])
    expect(f[0]!.evidence).toContain(
      'node1 nft: map no-endpoint-services element { 172.21.0.99 . tcp . 80 : goto reject-chain }',
    )
  })

  it("an endpoint chain's dnat deleted on node2: SERVICE_RULES_STALE there, and node2's pods never reach that endpoint", async () => {
    const l = lab.get()
    const ns = nodeNs(l, 'node2')
    const ep = pod(l, 'pod-node1-1').ip
    const listing = (await nsExec(ns, ['nft', '-a', 'list', 'table', 'ip', 'kube-proxy'])).stdout
    const chain = new RegExp(`chain (endpoint-\\S+/kube-dns/udp/dns__${ep.replace(/\./g, '\\.')}/53) `).exec(
      listing,
    )![1]!
    const handle = /dnat to .* # handle (\d+)/.exec(
      (await nsExec(ns, ['nft', '-a', 'list', 'chain', 'ip', 'kube-proxy', chain])).stdout,
    )![1]!
    expect((await nsExec(ns, ['nft', 'delete', 'rule', 'ip', 'kube-proxy', chain, 'handle', handle])).code).toBe(0)
    const f = (await serviceFindings(l.name)).filter((x) => x.code === 'SERVICE_RULES_STALE')
    expect(summary(f)).toEqual(['SERVICE_RULES_STALE node2 Service kube-system/kube-dns:dns (172.21.0.10 udp/53)'])
    expect(f[0]!.message).toContain(`no rule sends to ${ep}:53`)
    expect(await answers(10, () => dnsFrom(pod(l, 'pod-node2-2').netns))).not.toContain('pod-node1-1')
  })

  it('table ip kube-proxy deleted on node1: KUBE_PROXY_MISSING there', async () => {
    const l = lab.get()
    expect((await nsExec(nodeNs(l, 'node1'), ['nft', 'delete', 'table', 'ip', 'kube-proxy'])).code).toBe(0)
    const f = await serviceFindings(l.name)
    expect(summary(f.filter((x) => x.node === 'node1'))).toEqual(['KUBE_PROXY_MISSING node1 kube-proxy on node1'])
    expect(await answers(3, () => dnsFrom(pod(l, 'pod-node1-2').netns, undefined, 1))).toEqual(['', '', ''])
  })
})
