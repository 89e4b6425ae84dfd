import {describe, expect, it} from 'vitest'

import {buildProbe, DEFAULT_PATHS, octalEscape} from '../../src/collect/probe.js'
import {run} from '../../src/util/exec.js'

const NASTY = [
  "x'; touch /tmp/PWNED; '",
  '$(reboot)',
  '`id`',
  'a\nb',
  'back\\slash\\0101',
  '%s%n',
  'spaces  and\ttabs',
  'ünïcødé-ネット',
  '-n',
  '"',
  '',
]

describe('the probe script', () => {
  it('is valid POSIX sh (dash parses it)', async () => {
    const probe = buildProbe({pods: [{netns: 'a'}, {pid: 42}, {}], paths: {birdSocket: "/x/'b'"}})
    const r = await run('dash', ['-n', '-c', probe.script])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  it('pod values travel octal-escaped and come back byte for byte through printf %b', async () => {
    for (const value of NASTY) {
      const enc = octalEscape(value)
      expect(enc).toMatch(/^[A-Za-z0-9._\\-]+$/)
      // the decoding line the probe uses, run in a plain sh that only prints
      const r = await run('sh', ['-c', `v=$(printf '%bx' "$1"); v=\${v%x}; printf '%s' "$v"`, 'sh', enc])
      expect(r.stdout).toBe(value)
    }
  })

  it('lists only translated conntrack entries (the Service flows), under dash, from conntrack -L or /proc/net/nf_conntrack alike', async () => {
    const script = buildProbe().script
    const fn = script.slice(script.indexOf('ct_dnat() {'), script.indexOf('\n}\n', script.indexOf('ct_dnat() {')) + 3)
    const lines = [
      // a DNS query DNATed to an endpoint, a NodePort, a masqueraded ping, a vxlan packet, a /proc line (l3 and l4 numbers first)
      'ipv4     2 udp      17 26 src=172.20.1.3 dst=172.21.0.10 sport=34478 dport=53 src=172.20.2.2 dst=172.20.1.3 sport=53 dport=34478 mark=0 use=1',
      'ipv4     2 tcp      6 119 TIME_WAIT src=172.31.0.12 dst=172.31.0.11 sport=38476 dport=30080 src=172.20.1.2 dst=172.20.1.1 sport=8080 dport=38476 [ASSURED] mark=0 use=1',
      'ipv4     2 icmp     1 29 src=172.20.1.2 dst=172.31.0.12 type=8 code=0 id=17472 src=172.31.0.12 dst=172.31.0.11 type=0 code=0 id=53309 mark=262144 use=1',
      'ipv4     2 udp      17 28 src=172.31.0.12 dst=172.31.0.11 sport=44430 dport=8472 [UNREPLIED] src=172.31.0.11 dst=172.31.0.12 sport=8472 dport=44430 mark=0 use=1',
      'ipv4     2 udp      17 28 src=172.20.1.3 dst=172.21.0.10 sport=40053 dport=53 [UNREPLIED] src=172.20.1.99 dst=172.20.1.3 sport=53 dport=40053 mark=0 zone=0 use=2',
    ]
    const r = await run('dash', ['-c', `${fn}\nct_dnat`], {input: `${lines.join('\n')}\n`})
    expect(r.stderr).toBe('')
    expect(r.stdout.trim().split('\n')).toEqual([lines[0], lines[1], lines[4]])
  })

  it('paths from the inventory are single-quoted assignments that keep their value', async () => {
    for (const value of NASTY.filter((v) => v !== '')) {
      const probe = buildProbe({paths: {birdSocket: value, cniConfDir: value}})
      // the assignment block (a quoted value may span lines), evaluated by a sh that only prints
      const block = probe.script.slice(probe.script.indexOf('P_SUBNET_ENV='), probe.script.indexOf('POD='))
      const r = await run('sh', ['-c', `${block}\nprintf '%s|%s' "$P_BIRD" "$P_CNI_CONF"`])
      expect(r.stdout).toBe(`${value}|${value}`)
    }
  })

  it('uses the defaults where the inventory says nothing, and the inventory where it does', () => {
    expect(buildProbe().paths).toEqual(DEFAULT_PATHS)
    expect(buildProbe({paths: {cniConfDir: '/etc/k3s/cni'}}).paths).toEqual({
      ...DEFAULT_PATHS,
      cniConfDir: '/etc/k3s/cni',
    })
  })

  it('expects the node sections, then per pod the namespace and its sections', () => {
    const p = buildProbe({pods: [{netns: 'a'}, {pid: 7}]})
    expect(p.sections.slice(0, 3)).toEqual(['kernel', 'links', 'addresses'])
    expect(p.sections).toContain('pod.1.neighbours')
    expect(p.sections.at(-1)).toBe('processes')
  })

  it('a fresh marker every run, so no file content can fake a section', () => {
    expect(buildProbe().marker).not.toBe(buildProbe().marker)
    expect(() => buildProbe({nonce: "a'b"})).toThrow()
  })
})
