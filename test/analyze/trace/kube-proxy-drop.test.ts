/**
 * kube-proxy's intended drops met by a trace, over the recorded Service lab snapshots (3-node
 * flannel vxlan, kube-proxy in iptables and in nftables mode): the Service without endpoints
 * (default/no-endpoints, REJECT / `goto reject-chain`), internalTrafficPolicy Local without an
 * endpoint on node3 (default/node-local, DROP / `: drop`) and externalTrafficPolicy Local without one
 * there (default/web-local's NodePort 30082). Each raises SERVICE_NO_ENDPOINTS naming the Service,
 * whose fix is at the Kubernetes level, never FIREWALL_DROP, whose fix deletes kube-proxy's rule; an
 * older kube-proxy's KUBE-MARK-DROP + KUBE-FIREWALL the same; a drop the API contradicts is
 * SERVICE_RULES_STALE; anyone else's drop in a kube-proxy chain stays FIREWALL_DROP.
 */
import {describe, expect, it} from 'vitest'

import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import {intendedDrop, noEndpointsComment, ruleComment} from '../../../src/analyze/trace/kube-proxy-drop.js'
import {parseIptablesSave} from '../../../src/collect/parse/iptables.js'
import type {Finding} from '../../../src/model/finding.js'
import type {IptablesRule} from '../../../src/model/node-state.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import type {Trace} from '../../../src/model/trace.js'
import {traceSnapshotFile} from '../../../src/services/trace.js'
import {schemaErrors, snapshotFixture} from './fixtures.js'

const MODES = ['iptables', 'nftables'] as const
type Mode = (typeof MODES)[number]

const snap = (mode: Mode): Snapshot => snapshotFixture(`flannel-vxlan-services-${mode}-lab`)
const trace = (s: Snapshot, src: string, dst: string): Trace => traceSnapshot(s, {src, dst, size: 84, df: false}).trace
const codes = (t: Trace): string[] => t.findings.map((f) => f.code)
const one = (t: Trace, code: string): Finding => {
  const found = t.findings.filter((f) => f.code === code)
  expect(found, JSON.stringify(t.findings, null, 1)).toHaveLength(1)
  return found[0]!
}

/** The fix's commands (its `#` lines explain). */
const commands = (f: Finding): string[] => f.fix.split('\n').filter((l) => !l.startsWith('#'))

/** What the old finding told the operator: delete kube-proxy's rule. */
function expectNoRuleDeletion(t: Trace): void {
  expect(codes(t)).not.toContain('FIREWALL_DROP')
  for (const f of t.findings) expect(f.fix).not.toMatch(/ -D |delete it by its number|nft delete rule/)
}

describe.each(MODES)("kube-proxy's intended drops in the walk (%s mode)", (mode) => {
  it.each([
    ['pod-node1-2', 'a pod: filter FORWARD'],
    ['node1', "the node's own connection: filter OUTPUT"],
  ])(
    'default/no-endpoints from %s (%s): DENIED at kube-proxy’s reject, SERVICE_NO_ENDPOINTS about the Service with its kubectl fix',
    (src) => {
      const t = trace(snap(mode), src, 'svc/default/no-endpoints')
      expect(t.disposition).toBe('DENIED')
      expect(t.hops.at(-1)).toMatchObject({node: 'node1', action: 'drop', findings: ['SERVICE_NO_ENDPOINTS']})
      expectNoRuleDeletion(t)
      const f = one(t, 'SERVICE_NO_ENDPOINTS')
      // about the Service as `check` raises it (no node): a trace to it carries one such finding
      expect(f).toMatchObject({severity: 'warning', subject: 'Service default/no-endpoints'})
      expect(f.node).toBeUndefined()
      expect(f.message).toMatch(
        /^Service default\/no-endpoints:http has no ready endpoint: kube-proxy on node1 rejects tcp \S+ → 172\.21\.0\.99:80 by design/,
      )
      expect(f.evidence[0]).toBe('API: endpointslices of default/no-endpoints: no ready endpoint')
      expect(f.evidence.join('\n')).toContain(
        mode === 'iptables'
          ? '--comment "default/no-endpoints:http has no endpoints" -m tcp --dport 80 -j REJECT'
          : 'vmap @no-endpoint-services    (element 172.21.0.99 . tcp . 80 comment "default/no-endpoints:http" : goto reject-chain)',
      )
      expect(commands(f)).toEqual([
        'kubectl -n default describe service no-endpoints',
        'kubectl -n default get pods -o wide --show-labels',
      ])
      expect(schemaErrors(t)).toBeUndefined()
    },
  )

  it.each([
    ['pod-node3-2', 'a pod: filter FORWARD'],
    ['node3', "the node's own connection: filter OUTPUT"],
  ])(
    'default/node-local (internalTrafficPolicy Local) from %s (%s): dropped on node3, which has no endpoint; the fix is an endpoint there or the policy back to Cluster',
    (src) => {
      const t = trace(snap(mode), src, 'svc/default/node-local')
      expect(t.disposition).toBe('DENIED')
      expect(t.hops.at(-1)).toMatchObject({node: 'node3', action: 'drop', findings: ['SERVICE_NO_ENDPOINTS']})
      expectNoRuleDeletion(t)
      const f = one(t, 'SERVICE_NO_ENDPOINTS')
      expect(f).toMatchObject({severity: 'warning', node: 'node3', subject: 'Service default/node-local'})
      expect(f.message).toMatch(
        /^Service default\/node-local:http has no endpoint on node3 \(internalTrafficPolicy Local\): kube-proxy there drops tcp \S+ → 172\.21\.0\.82:80 by design; its endpoints: 172\.20\.1\.2 on node1, 172\.20\.2\.2 on node2$/,
      )
      expect(f.evidence[0]).toBe(
        'API: endpointslices of default/node-local, internalTrafficPolicy Local: ready endpoints 172.20.1.2 on node1, 172.20.2.2 on node2',
      )
      expect(f.evidence.join('\n')).toContain(
        mode === 'iptables'
          ? '--comment "default/node-local:http has no local endpoints" -m tcp --dport 80 -j DROP'
          : 'vmap @no-endpoint-services    (element 172.21.0.82 . tcp . 80 comment "default/node-local:http" : drop)',
      )
      expect(f.fix.split('\n')[0]).toContain('(internalTrafficPolicy Local)')
      expect(commands(f)).toEqual([
        'kubectl -n default get endpointslices -l kubernetes.io/service-name=node-local -o wide',
        `kubectl -n default patch service node-local --type merge -p '{"spec":{"internalTrafficPolicy":"Cluster"}}'`,
      ])
      expect(schemaErrors(t)).toBeUndefined()
    },
  )

  it.each([
    ['node1', 'another node'],
    ['pod-node1-1', "a pod of another node (masqueraded to node1's address on the way)"],
  ])(
    "default/web-local's NodePort on node3 (externalTrafficPolicy Local) from %s (%s): dropped on node3, which has no endpoint; the fix names externalTrafficPolicy",
    (src) => {
      const t = trace(snap(mode), src, 'node3:30082')
      expect(t.disposition).toBe('DENIED')
      expect(t.hops.at(-1)).toMatchObject({node: 'node3', action: 'drop', findings: ['SERVICE_NO_ENDPOINTS']})
      expectNoRuleDeletion(t)
      const f = one(t, 'SERVICE_NO_ENDPOINTS')
      expect(f).toMatchObject({node: 'node3', subject: 'Service default/web-local'})
      expect(f.message).toMatch(
        /^Service default\/web-local:http has no endpoint on node3 \(externalTrafficPolicy Local\): kube-proxy there drops tcp 172\.31\.0\.11 → 172\.31\.0\.13:30082, which comes from outside the node, by design/,
      )
      expect(f.evidence.join('\n')).toContain(
        mode === 'iptables'
          ? '--comment "default/web-local:http has no local endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30082 -j DROP'
          : 'vmap @no-endpoint-nodeports    (element tcp . 30082 comment "default/web-local:http" : drop)',
      )
      expect(commands(f).at(-1)).toBe(
        `kubectl -n default patch service web-local --type merge -p '{"spec":{"externalTrafficPolicy":"Cluster"}}'`,
      )
      // node3's own connection to its NodePort goes to every endpoint: nothing dropped
      expect(trace(snap(mode), 'node3', 'node3:30082').disposition).toBe('DELIVERED')
    },
  )

  it('through the path checks (trace --snapshot): one SERVICE_NO_ENDPOINTS for the Service without endpoints, and no FIREWALL_DROP for any of the three', () => {
    const s = snap(mode)
    const run = (src: string, dst: string) => traceSnapshotFile(s, {src, dst, size: 84, df: false})
    const none = run('pod-node1-2', 'svc/no-endpoints')
    expect(none.exitCode).toBe(1)
    expect(none.trace.findings.map((f) => `${f.code} ${f.node ?? '-'} ${f.subject}`)).toEqual([
      'SERVICE_NO_ENDPOINTS - Service default/no-endpoints',
    ])
    for (const [src, dst] of [
      ['pod-node3-2', 'svc/node-local'],
      ['node1', 'node3:30082'],
    ] as const) {
      const r = run(src, dst)
      expect(r.exitCode).toBe(1)
      expect(r.trace.findings.map((f) => `${f.code} ${f.node ?? '-'} ${f.subject}`)).toEqual([
        `SERVICE_NO_ENDPOINTS node3 Service default/${dst === 'node3:30082' ? 'web-local' : 'node-local'}`,
      ])
    }
  })

  it('kube-proxy rejects a Service the API gives ready endpoints (its rules behind): SERVICE_RULES_STALE on that node, as check names it, once', () => {
    const s = snap(mode)
    const svc = s.services!.find((x) => x.name === 'no-endpoints')!
    svc.endpoints = [{addresses: ['172.20.2.2'], nodeName: 'node2', conditions: {ready: true}}]
    const run = traceSnapshotFile(s, {src: 'pod-node1-2', dst: 'svc/no-endpoints', size: 84, df: false})
    expect(run.trace.disposition).toBe('DENIED')
    expect(run.trace.hops.at(-1)?.findings).toEqual(['SERVICE_RULES_STALE'])
    const stale = run.trace.findings.filter((f) => f.code === 'SERVICE_RULES_STALE' && f.node === 'node1')
    expect(stale.map((f) => f.subject)).toEqual(['Service default/no-endpoints:http (172.21.0.99 tcp/80)'])
    expect(stale[0]!.message).toMatch(
      /^kube-proxy's rules on node1 disagree with the EndpointSlices of default\/no-endpoints:http: it rejects the Service as having no endpoints, but the EndpointSlices list 1 ready endpoint; it rejects tcp /,
    )
    expect(run.trace.findings.map((f) => f.code)).not.toContain('SERVICE_NO_ENDPOINTS')
    expectNoRuleDeletion(run.trace)
  })

  it.each([
    [
      'an endpoint on node3 in the API',
      (s: Snapshot) =>
        s
          .services!.find((x) => x.name === 'node-local')!
          .endpoints!.push({addresses: ['172.20.3.2'], nodeName: 'node3', conditions: {ready: true}}),
      'but the EndpointSlices list 172.20.3.2 on node3',
    ],
    [
      'internalTrafficPolicy Cluster in the API',
      (s: Snapshot) => delete s.services!.find((x) => x.name === 'node-local')!.internalTrafficPolicy,
      'but its internalTrafficPolicy is Cluster',
    ],
  ])('kube-proxy drops node-local on node3 while the API has %s: SERVICE_RULES_STALE', (_what, edit, says) => {
    const s = snap(mode)
    edit(s)
    const t = trace(s, 'pod-node3-2', 'svc/default/node-local')
    expect(t.disposition).toBe('DENIED')
    const f = one(t, 'SERVICE_RULES_STALE')
    expect(f).toMatchObject({node: 'node3', subject: 'Service default/node-local:http (172.21.0.82 tcp/80)'})
    expect(f.message).toContain(`it drops the Service as having no endpoint on node3, ${says}`)
    expect(codes(t)).not.toContain('SERVICE_NO_ENDPOINTS')
  })
})

/** One rule of `table`, as iptables-save prints it (a chain of its own). */
function rule(table: string, line: string): IptablesRule {
  const chain = line.split(' ')[1]!
  return parseIptablesSave(`*${table}\n:${chain} - [0:0]\n${line}\nCOMMIT\n`).tables[0]!.chains[0]!.rules[0]!
}

describe('an older kube-proxy: "has no local endpoints" -j KUBE-MARK-DROP in nat, the drop by mark in KUBE-FIREWALL', () => {
  /** node3 as kube-proxy wrote it before the filter-table drops: web-local's KUBE-EXT chain ends in the mark */
  function olderKubeProxy(): Snapshot {
    const s = snapshotFixture('flannel-vxlan-services-iptables-lab')
    const ipt = s.nodeStates.node3!.iptables!
    const nat = ipt.tables.find((t) => t.name === 'nat')!
    const filter = ipt.tables.find((t) => t.name === 'filter')!
    const ext = nat.chains.find((c) =>
      c.rules.some((r) => r.raw.includes('"default/web-local:http"') && r.target?.startsWith('KUBE-EXT-')),
    )!
    const extChain = nat.chains.find((c) => c.name === ext.rules.find((r) => r.raw.includes('web-local'))!.target)!
    extChain.rules.push(
      rule(
        'nat',
        `-A ${extChain.name} -m comment --comment "default/web-local:http has no local endpoints" -j KUBE-MARK-DROP`,
      ),
    )
    nat.chains.push({
      name: 'KUBE-MARK-DROP',
      rules: [rule('nat', '-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000')],
    })
    const external = filter.chains.find((c) => c.name === 'KUBE-EXTERNAL-SERVICES')!
    external.rules = external.rules.filter((r) => !r.raw.includes('web-local'))
    filter.chains
      .find((c) => c.name === 'KUBE-FIREWALL')!
      .rules.push(
        rule(
          'filter',
          '-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP',
        ),
      )
    return s
  }

  it('node1 → node3:30082: DENIED at the mark drop, SERVICE_NO_ENDPOINTS naming web-local (the marking rule as evidence), not FIREWALL_DROP', () => {
    const t = trace(olderKubeProxy(), 'node1', 'node3:30082')
    expect(t.disposition).toBe('DENIED')
    expect(t.hops.at(-1)).toMatchObject({node: 'node3', action: 'drop', findings: ['SERVICE_NO_ENDPOINTS']})
    expect(t.hops.at(-1)!.evidence.join('\n')).toContain('--mark 0x8000/0x8000 -j DROP')
    expectNoRuleDeletion(t)
    const f = one(t, 'SERVICE_NO_ENDPOINTS')
    expect(f).toMatchObject({node: 'node3', subject: 'Service default/web-local'})
    expect(f.message).toContain('has no endpoint on node3 (externalTrafficPolicy Local)')
    expect(f.evidence[1]).toMatch(
      /^-A KUBE-EXT-\S+ -m comment --comment "default\/web-local:http has no local endpoints" -j KUBE-MARK-DROP {4}\(nat, earlier: the mark this drop is for\)$/,
    )
  })

  it("KUBE-FIREWALL's mark drop with no such nat rule on the way (something else marked it): FIREWALL_DROP, as any drop", () => {
    const s = olderKubeProxy()
    const nat = s.nodeStates.node3!.iptables!.tables.find((t) => t.name === 'nat')!
    for (const c of nat.chains)
      for (const r of c.rules)
        if (r.raw.includes('has no local endpoints')) r.raw = r.raw.replace('has no local endpoints', 'marked by hand')
    expect(codes(trace(s, 'node1', 'node3:30082'))).toContain('FIREWALL_DROP')
  })
})

describe('not kube-proxy’s intended drop', () => {
  it('a DROP someone put first in kube-proxy’s KUBE-SERVICES (no such comment): FIREWALL_DROP, as before', () => {
    const s = snapshotFixture('flannel-vxlan-services-iptables-lab')
    const filter = s.nodeStates.node1!.iptables!.tables.find((t) => t.name === 'filter')!
    filter.chains
      .find((c) => c.name === 'KUBE-SERVICES')!
      .rules.unshift(
        rule(
          'filter',
          '-A KUBE-SERVICES -d 172.21.0.99/32 -p tcp -m comment --comment "by hand" -m tcp --dport 80 -j DROP',
        ),
      )
    const t = trace(s, 'pod-node1-2', 'svc/default/no-endpoints')
    expect(t.disposition).toBe('DENIED')
    expect(codes(t)).toEqual(['FIREWALL_DROP'])
    expect(t.findings[0]!.message).toMatch(
      /^-A KUBE-SERVICES .*"by hand".* \(kube-proxy's chain KUBE-SERVICES\) drops /,
    )
  })
})

describe('reading kube-proxy’s words', () => {
  it.each([
    [
      'default/no-endpoints:http has no endpoints',
      {namespace: 'default', name: 'no-endpoints', port: 'http', local: false},
    ],
    ['default/web has no endpoints', {namespace: 'default', name: 'web', local: false}],
    [
      'default/node-local:http has no local endpoints',
      {namespace: 'default', name: 'node-local', port: 'http', local: true},
    ],
    // kube-proxy before 1.1x wrote an empty port name with its colon
    ['default/nginx: has no local endpoints', {namespace: 'default', name: 'nginx', local: true}],
  ])('%s', (comment, want) => {
    expect(noEndpointsComment(comment)).toEqual(want)
  })

  it('other comments are not', () => {
    for (const c of [
      'default/web:http cluster IP',
      'kubernetes firewall for dropping marked packets',
      'has no endpoints',
    ])
      expect(noEndpointsComment(c)).toBeUndefined()
  })

  it('a comment quoted or not', () => {
    expect(ruleComment('-A KUBE-SERVICES -m comment --comment "a b \\"c\\"" -j REJECT')).toBe('a b "c"')
    expect(ruleComment('-A X -m comment --comment plain -j DROP')).toBe('plain')
    expect(ruleComment('-A X -j DROP')).toBeUndefined()
  })

  it("only kube-proxy's chains, with the target that goes with the words (REJECT: none; DROP: none here)", () => {
    const reject =
      '-A KUBE-SERVICES -d 172.21.0.99/32 -p tcp -m comment --comment "default/no-endpoints:http has no endpoints" -m tcp --dport 80 -j REJECT'
    expect(intendedDrop({owner: 'kube-proxy', chain: 'KUBE-SERVICES', text: reject}, [])).toEqual({
      kind: 'none',
      namespace: 'default',
      name: 'no-endpoints',
      port: 'http',
    })
    expect(intendedDrop({owner: 'the host', chain: 'KUBE-SERVICES', text: reject}, [])).toBeUndefined()
    expect(
      intendedDrop({owner: 'kube-proxy', chain: 'KUBE-SERVICES', text: reject.replace('REJECT', 'DROP')}, []),
    ).toBeUndefined()
  })
})
