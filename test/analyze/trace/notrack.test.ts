/**
 * A request the raw table leaves untracked (iptables' NOTRACK, nft's notrack), over the recorded Service lab
 * snapshots with the raw rules an operator adds (fixtures/iptables/raw-notrack.txt, fixtures/nft/raw-notrack.json,
 * both as the tools print them): nat never sees an untracked packet, so a Service address is not translated;
 * and conntrack never saw the request, so its reply is INVALID (an echo reply, a SYN-ACK) or a NEW connection
 * (UDP), which kube-proxy's iptables-mode `--ctstate INVALID -j DROP` in KUBE-FORWARD drops. The finding's fix
 * is the untracking rule's, never the deletion of kube-proxy's rule. The lab test (notrack-lab.test.ts)
 * checks each verdict against real packets.
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {parseIptablesSave} from '../../../src/collect/parse/iptables.js'
import {parseNftRuleset} from '../../../src/collect/parse/nft.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import type {Protocol, Trace} from '../../../src/model/trace.js'
import {REPO} from '../../helpers/cli.js'
import {flow, schemaErrors, snapshotFixture} from './fixtures.js'

const fixture = (f: string): string => readFileSync(path.join(REPO, 'fixtures', f), 'utf8')
const REQUEST_NOTRACK = '-A PREROUTING -s 172.20.1.3/32 -d 172.20.2.2/32 -j NOTRACK'

/** node1 of the iptables-mode lab with the raw table of the fixture, and more rules of its own. */
function iptablesLab(extra: string[] = []): Snapshot {
  const s = snapshotFixture('flannel-vxlan-services-iptables-lab')
  const text = fixture('iptables/raw-notrack.txt').replace('COMMIT', [...extra, 'COMMIT'].join('\n'))
  s.nodeStates.node1!.iptables!.tables.push(parseIptablesSave(text).tables[0]!)
  return s
}

function nftablesLab(): Snapshot {
  const s = snapshotFixture('flannel-vxlan-services-nftables-lab')
  s.nodeStates.node1!.nft!.tables.push(...parseNftRuleset(fixture('nft/raw-notrack.json')).tables)
  return s
}

const walk = (s: Snapshot, dst: string, protocol?: Protocol, port?: number): Trace =>
  flow(s, 'pod-node1-2', dst, protocol, port ? {port} : {})

describe.each([
  ['iptables', iptablesLab, '-A PREROUTING -s 172.20.1.3/32 -d 172.21.0.80/32 -j NOTRACK'],
  ['nftables', nftablesLab, 'ip saddr 172.20.1.3 ip daddr 172.21.0.80 notrack'],
] as const)('kube-proxy in %s mode', (_mode, lab, notrack) => {
  it('a ClusterIP the raw table untracks on the way is not translated: no endpoint is walked, each says why, the notrack rule is in the evidence', () => {
    const t = walk(lab(), 'svc/default/web')
    expect(schemaErrors(t)).toBeUndefined()
    expect(t.translation).toBeNull()
    expect(t.service).toMatchObject({name: 'web', reached: 0, total: 0})
    // the kernel: untranslated, the packet follows the route to the Service range and is lost
    expect(t.disposition).toBe('NO_ROUTE')
    expect(t.hops.flatMap((h) => h.evidence)).toContain(notrack)
    expect(t.endpoints!.length).toBeGreaterThan(0)
    for (const e of t.endpoints!)
      expect(e.note).toBe(
        "not walked: the request went untracked on node1 (a notrack rule of the raw table), and kube-proxy's nat rules never see an untracked packet",
      )
  })
})

describe('iptables mode: the reply to a request conntrack never saw', () => {
  it.each([
    ['icmp', undefined],
    ['tcp', 8080],
  ] as const)(
    '%s: INVALID on node1, dropped by KUBE-FORWARD; FIREWALL_DROP names the NOTRACK rule and its fix is that rule’s',
    (protocol, port) => {
      const t = walk(iptablesLab(), 'pod-node2-1', protocol, port)
      expect(t.disposition).toBe('DELIVERED')
      expect(t.returnPath?.disposition).toBe('DENIED')
      const last = t.returnPath!.hops.at(-1)!
      expect(last).toMatchObject({node: 'node1', action: 'drop', findings: ['FIREWALL_DROP']})
      expect(last.evidence).toContain('-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP')
      const f = t.findings.find((x) => x.code === 'FIREWALL_DROP')!
      expect(f).toMatchObject({node: 'node1', subject: 'iptables raw: the request untracked'})
      expect(f.message).toMatch(
        new RegExp(
          `^-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP \\(kube-proxy's chain KUBE-FORWARD\\) drops the reply ${protocol} 172\\.20\\.2\\.2\\S* → 172\\.20\\.1\\.3\\S* on node1: `,
        ),
      )
      expect(f.message).toContain(`the request went untracked there (${REQUEST_NOTRACK})`)
      expect(f.message).toMatch(/takes it for INVALID$/)
      expect(f.fix).toContain(`# the request was untracked on node1 by: ${REQUEST_NOTRACK}`)
      // kube-proxy's rule is not the one to delete
      expect(f.fix).not.toMatch(/-D KUBE-FORWARD|delete it by its number/)
    },
  )

  it('udp: the reply is a NEW connection to conntrack, which nothing drops: delivered both ways', () => {
    const t = walk(iptablesLab(), 'pod-node2-1', 'udp', 53)
    expect([t.disposition, t.returnPath?.disposition]).toEqual(['DELIVERED', 'DELIVERED'])
    expect(t.findings).toEqual([])
  })

  it('the replies untracked as well (the fix’s other way): untracked, not INVALID, so they pass', () => {
    const t = walk(iptablesLab(['-A PREROUTING -s 172.20.2.2/32 -d 172.20.1.3/32 -j NOTRACK']), 'pod-node2-1')
    expect([t.disposition, t.returnPath?.disposition]).toEqual(['DELIVERED', 'DELIVERED'])
    expect(t.returnPath!.hops.flatMap((h) => h.evidence)).toContain(
      '-A PREROUTING -s 172.20.2.2/32 -d 172.20.1.3/32 -j NOTRACK',
    )
  })
})

it('nftables mode: kube-proxy drops no INVALID packet in its forward chain, so the unseen echo reply is delivered (as the kernel does)', () => {
  const t = walk(nftablesLab(), 'pod-node2-1')
  expect([t.disposition, t.returnPath?.disposition]).toEqual(['DELIVERED', 'DELIVERED'])
  expect(t.hops.flatMap((h) => h.evidence)).toContain('ip saddr 172.20.1.3 ip daddr 172.20.2.2 notrack')
})
