import {execFileSync} from 'node:child_process'

import {describe, expect, it} from 'vitest'

import {findingsAsTyped, fixAsTyped, KUBECTL_ELSEWHERE} from '../../../src/analyze/catalogue/as-typed.js'
import {makeFinding} from '../../../src/analyze/catalogue/index.js'
import type {Snapshot} from '../../../src/model/snapshot.js'

const fdbMissing = makeFinding('FDB_MISSING', {
  node: 'node1',
  subject: 'flannel.1',
  evidence: [],
  vars: {vtepMAC: 'aa:bb:cc:dd:ee:02', dev: 'flannel.1', peer: 'node2', peerIP: '10.0.0.2', node: 'node1'},
})

const cluster = (source: Snapshot['cluster']['source']) =>
  ({source, name: 'c', backend: 'flannel-vxlan', clusterCIDR: '10.244.0.0/16'}) as Snapshot['cluster']
const nodes = (netns?: string) => [
  {name: 'node1', internalIP: '10.0.0.1', podCIDRs: [], annotations: {}, labels: {}, ...(netns ? {netns} : {})},
]

describe('a fix as it is typed on this machine', () => {
  it('a lab node: every command through ip netns exec, no kubectl line (nor its comment)', () => {
    const [f] = findingsAsTyped([fdbMissing], {cluster: cluster('lab'), nodes: nodes('fl-demo.node1')})
    expect(f!.fix).toBe(
      [
        '# add the entry the agent should have programmed for node2 (10.0.0.2)',
        'ip netns exec fl-demo.node1 bridge fdb replace aa:bb:cc:dd:ee:02 dev flannel.1 dst 10.0.0.2 self permanent',
      ].join('\n'),
    )
  })

  it('Kubernetes: the fix as the catalogue gives it, kubectl included', () => {
    const [f] = findingsAsTyped([fdbMissing], {cluster: cluster('kubernetes'), nodes: nodes()})
    expect(f).toBe(fdbMissing)
    expect(f!.fix).toContain('kubectl -n kube-flannel delete pod')
  })

  it('an inventory of real nodes: typed on the node, but no kubectl', () => {
    const [f] = findingsAsTyped([fdbMissing], {cluster: cluster('inventory'), nodes: nodes()})
    expect(f!.fix).not.toMatch(/kubectl|restart flanneld/)
    expect(f!.fix).toContain('\nbridge fdb replace aa:bb:cc:dd:ee:02')
  })

  it("kube-proxy's restart in a lab is netctl's own command, run on this machine; elsewhere the catalogue's kubectl lines stay", () => {
    const stale = ['SERVICE_RULES_STALE', 'KUBE_PROXY_MISSING'].map((code) =>
      makeFinding(code as 'SERVICE_RULES_STALE', {
        node: 'node1',
        subject: 'kube-proxy',
        evidence: [],
        vars: {node: 'node1', namespace: 'default', service: 'web'},
      }),
    )
    for (const f of findingsAsTyped(stale, {cluster: cluster('lab'), nodes: nodes('fl-demo.node1')}))
      expect(f.fix.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
        'netctl lab kube-proxy sync --lab c --node node1',
      ])
    for (const f of findingsAsTyped(stale, {cluster: cluster('inventory'), nodes: nodes()}))
      expect(f.fix).not.toContain('netctl lab')
    for (const f of findingsAsTyped(stale, {cluster: cluster('kubernetes'), nodes: nodes()}))
      expect(f.fix).toContain('kubectl -n kube-system delete pod -l k8s-app=kube-proxy')
  })

  it('shell syntax runs in the namespace too (sh -c), a namespace name is quoted, and /etc is not the lab node’s to write', () => {
    const fix = [
      'sysctl -w net.ipv4.ip_forward=1',
      '# keep it across reboots',
      'echo net.ipv4.ip_forward=1 > /etc/sysctl.d/99-kubernetes-forward.conf',
      '# the rules',
      "iptables-save | grep -n 'KUBE-FORWARD'",
    ].join('\n')
    expect(fixAsTyped(fix, {netns: 'lab x.node1', kubernetes: false}).split('\n')).toEqual([
      "ip netns exec 'lab x.node1' sysctl -w net.ipv4.ip_forward=1",
      '# the rules',
      `ip netns exec 'lab x.node1' sh -c 'iptables-save | grep -n '\\''KUBE-FORWARD'\\'''`,
    ])
  })

  it('the sh -c line is one word to the shell: the quoting survives a real shell', () => {
    const line = fixAsTyped("echo 'a b' | tr a-z A-Z", {netns: 'n1', kubernetes: false})
    // replace `ip netns exec n1` with `env` to run the same argv without a namespace
    const out = execFileSync('sh', ['-c', line.replace(/^ip netns exec n1 /, 'env ')], {encoding: 'utf8'})
    expect(out).toBe('A B\n')
  })
  it('a fix that is kubectl alone is not printed empty where no API was read: its lines stay, commented out, under a lead', () => {
    const noEndpoints = makeFinding('SERVICE_NO_ENDPOINTS', {
      node: 'node1',
      subject: 'default/web',
      evidence: [],
      vars: {namespace: 'default', service: 'web', node: 'node1'},
    })
    const duplicate = makeFinding('PODCIDR_DUPLICATE', {
      node: 'node2',
      subject: '10.244.1.0/24',
      evidence: [],
      vars: {node: 'node2', podCIDR: '10.244.1.0/24', other: 'node1'},
    })
    for (const [source, netns] of [
      ['lab', 'fl-demo.node1'],
      ['inventory', undefined],
    ] as const) {
      const [f, d] = findingsAsTyped([noEndpoints, duplicate], {cluster: cluster(source), nodes: nodes(netns)})
      for (const typed of [f!, d!]) {
        const lines = typed.fix.split('\n')
        expect(lines[0], source).toBe(KUBECTL_ELSEWHERE)
        // nothing in it runs: pasted into a shell, it does nothing; nothing of the catalogue's fix is lost
        expect(
          lines.every((l) => l.startsWith('#')),
          typed.fix,
        ).toBe(true)
      }
      expect(f!.fix).toContain('\n# kubectl -n default describe service web\n')
      // the comment about restarting kubelet comes after the commands it follows, not alone
      expect(d!.fix.split('\n').slice(1)).toEqual([
        '# spec.podCIDR cannot change in place: re-register one of the nodes so it gets a fresh subnet',
        '# kubectl drain node2 --ignore-daemonsets --delete-emptydir-data',
        '# kubectl delete node node2',
        '# then restart kubelet on node2; it registers again and gets a new podCIDR',
      ])
    }
    // in Kubernetes the catalogue's own lines, runnable
    const [k] = findingsAsTyped([noEndpoints], {cluster: cluster('kubernetes'), nodes: nodes()})
    expect(k!.fix).toBe(noEndpoints.fix)
    expect(k!.fix).toMatch(/^kubectl -n default describe service web$/m)
  })
})
