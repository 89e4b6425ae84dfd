import {describe, expect, it} from 'vitest'

import {pingScript, podPairs, podReachability} from '../../src/backend/act/pod-ping.js'
import type {Transport} from '../../src/transport/types.js'
import {snapshotFixture} from '../helpers/fixtures.js'

describe('pinging pods through the node transports', () => {
  it('pairs the first pod of each node with the first of every other node and with its neighbour, from the namespace the probe entered', () => {
    const s = snapshotFixture('calico-bgp-lab')
    const pairs = podPairs(s).map(([a, b]) => `${a.name} ${a.netns} -> ${b.name} ${b.ip}`)
    expect(pairs).toEqual([
      'default/pod-node1-1 /var/run/netns/trc-cb.node1.pod1 -> default/pod-node2-1 172.20.2.2',
      'default/pod-node1-1 /var/run/netns/trc-cb.node1.pod1 -> default/pod-node3-1 172.20.3.2',
      'default/pod-node1-1 /var/run/netns/trc-cb.node1.pod1 -> default/pod-node1-2 172.20.1.3',
      'default/pod-node2-1 /var/run/netns/trc-cb.node2.pod1 -> default/pod-node1-1 172.20.1.2',
      'default/pod-node2-1 /var/run/netns/trc-cb.node2.pod1 -> default/pod-node3-1 172.20.3.2',
      'default/pod-node2-1 /var/run/netns/trc-cb.node2.pod1 -> default/pod-node2-2 172.20.2.3',
      'default/pod-node3-1 /var/run/netns/trc-cb.node3.pod1 -> default/pod-node1-1 172.20.1.2',
      'default/pod-node3-1 /var/run/netns/trc-cb.node3.pod1 -> default/pod-node2-1 172.20.2.2',
      'default/pod-node3-1 /var/run/netns/trc-cb.node3.pod1 -> default/pod-node3-2 172.20.3.3',
    ])
  })

  it('a node whose pods were not entered pings from none of them, but is still pinged', () => {
    const s = snapshotFixture('calico-bgp-lab')
    delete s.nodeStates.node2
    const pairs = podPairs(s)
    expect(pairs.some(([a]) => a.node === 'node2')).toBe(false)
    expect(pairs.filter(([, b]) => b.node === 'node2').length).toBe(2)
  })

  it('quotes the namespace path for the shell and takes nothing but IPv4 addresses as targets', () => {
    const script = pingScript("/proc/1/ns/net'; reboot '", ['172.20.2.2'])
    expect(script).toContain(`nsenter --net='/proc/1/ns/net'\\''; reboot '\\''' ping -c 1 -W 1`)
    expect(() => pingScript('/var/run/netns/x', ['172.20.2.2; reboot'])).toThrow(/not an IPv4 address/)
  })

  it('counts what each node answers, and says which nodes lack the tools instead of failing them', async () => {
    const s = snapshotFixture('calico-bgp-lab')
    const transport = (node: string): Transport =>
      ({
        target: node,
        async exec(script: string) {
          if (node === 'node3') return {stdout: 'NOTOOLS\n', stderr: '', code: 0}
          // node2 answers for every target but 172.20.3.2
          const ips = /for ip in ([^;]+); do/.exec(script)![1]!.split(' ')
          return {
            stdout: ips.map((ip) => `${ip} ${node === 'node2' && ip === '172.20.3.2' ? 0 : 1}`).join('\n'),
            stderr: '',
            code: 0,
          }
        },
        async close() {},
      }) as unknown as Transport
    const nodes = s.nodes.map((n) => ({name: n.name, internalIP: n.internalIP, podCIDR: n.podCIDRs[0]!, access: {}}))
    const r = await podReachability(s, nodes, (n) => transport(n.name)).check()
    expect(r).toEqual({
      pairs: 6,
      ok: 5,
      failed: [{from: 'default/pod-node2-1', to: 'default/pod-node3-1', toIP: '172.20.3.2'}],
      note: 'not pinged from node3: no nsenter or ping on the node',
    })
  })
})
