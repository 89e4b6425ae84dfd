import {expect, it} from 'vitest'

import {describeLab, ipJson, useLab} from '../helpers/lab.js'
import {expectAllPodsReachable, expectReported, setBackend} from './lab-helpers.js'

type KernelRoute = {dst: string; gateway?: string; dev?: string; protocol?: string; flags?: string[]}

describeLab('Calico VXLAN CrossSubnet across a router: backend set to and from it', () => {
  const lab = useLab('bk', [
    '--nodes',
    '3',
    '--pods-per-node',
    '1',
    '--backend',
    'calico-vxlan',
    '--topology',
    'routed',
  ])

  /** Each node's route to each peer block, against what CrossSubnet means for that pair. */
  async function expectCrossSubnetRoutes(): Promise<void> {
    for (const node of lab.get().nodes) {
      for (const peer of lab.get().nodes.filter((p) => p !== node)) {
        const routes = await ipJson<KernelRoute[]>(node.netns, ['route', 'show', peer.podCIDR])
        const want =
          peer.subnet === node.subnet
            ? [peer.ip, 'eth0', '80', []]
            : [peer.podCIDR.split('/')[0], 'vxlan.calico', '80', ['onlink']]
        expect(
          routes.map((r) => [r.gateway, r.dev, r.protocol, r.flags]),
          `${node.name} -> ${peer.name}`,
        ).toEqual([want])
      }
    }
  }

  it('vxlan -> CrossSubnet: direct routes within a subnet, vxlan.calico across the router; every pod pair reachable', async () => {
    const r = await setBackend(lab.get(), 'calico-vxlan-crosssubnet')
    expect(r.code, r.json.message).toBe(0)
    // only the pairs on one subnet change: the others keep their tunnel route
    const sameSubnetPairs = lab
      .get()
      .nodes.flatMap((a) => lab.get().nodes.filter((b) => b !== a && b.subnet === a.subnet))
    expect(
      r.json.plan.nodes
        .flatMap((n: {diff: {routes: {add: string[]}}}) => n.diff.routes.add)
        .filter((l: string) => !l.startsWith('blackhole')),
    ).toHaveLength(sameSubnetPairs.length)
    await expectCrossSubnetRoutes()
    await expectAllPodsReachable(lab.get())
    await expectReported(lab.get(), 'calico-vxlan-crosssubnet')
  })

  it('calico-bgp is refused here (pairs across the router), calico-vxlan applies, and back to CrossSubnet', async () => {
    const bgp = await setBackend(lab.get(), 'calico-bgp')
    expect(bgp.code).toBe(4)
    expect(bgp.json.plan.preflight.notAdjacent.length).toBeGreaterThan(0)

    const always = await setBackend(lab.get(), 'calico-vxlan')
    expect(always.code, always.json.message).toBe(0)
    for (const node of lab.get().nodes) {
      const routes = await ipJson<KernelRoute[]>(node.netns, ['route', 'show', 'proto', '80'])
      expect(routes.filter((r) => r.dev === 'eth0')).toEqual([])
    }
    await expectAllPodsReachable(lab.get())

    const back = await setBackend(lab.get(), 'calico-vxlan-crosssubnet')
    expect(back.code, back.json.message).toBe(0)
    await expectCrossSubnetRoutes()
    await expectAllPodsReachable(lab.get())
    await expectReported(lab.get(), 'calico-vxlan-crosssubnet')
  })
})
