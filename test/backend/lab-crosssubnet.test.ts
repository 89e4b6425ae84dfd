/**
 * Calico VXLAN CrossSubnet on a routed lab (two subnets joined by a router):
 * pairs within a subnet go native, pairs across the router through
 * vxlan.calico. Every switch to and from it is also the what-if's proof: the
 * matrix the plan predicts (applied to a collect, no node touched) equals the
 * matrix of a collect after the real `backend set`, pair by pair, and so does
 * each pair's path (native or tunnel); the kernel's `ip route get` takes the
 * predicted walks' routes, and ping agrees.
 */
import {expect, it} from 'vitest'

import {reachabilityMatrix} from '../../src/analyze/matrix.js'
import type {BackendType} from '../../src/backend/plan/types.js'
import {routeDisagreements} from '../analyze/trace/oracle.js'
import {describeLab, ipJson, type LabUp, useLab} from '../helpers/lab.js'
import {
  expectAllPodsReachable,
  expectReported,
  expectWhatIfIsTheSwitch,
  matrixPaths,
  setBackend,
} from './lab-helpers.js'

type KernelRoute = {dst: string; gateway?: string; dev?: string; protocol?: string; flags?: string[]}

const LONG = 240_000

describeLab('Calico VXLAN CrossSubnet across a router: backend set to and from it', () => {
  const lab = useLab('bq', [
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

  /**
   * The real switch to TO, its what-if first: the predicted matrix is the real
   * one (expectWhatIfIsTheSwitch), each pair's predicted path is its real path,
   * and the kernel routes as the predicted walks do. Returns the predicted
   * paths and the switch's JSON.
   */
  async function switchAsPredicted(to: BackendType): Promise<{
    paths: ReturnType<typeof matrixPaths>
    set: Awaited<ReturnType<typeof expectWhatIfIsTheSwitch>>['set']
  }> {
    const {applied, after, set, predicted} = await expectWhatIfIsTheSwitch(lab.get(), to)
    expect(predicted.refused).toEqual([])
    const paths = matrixPaths(applied)
    expect(paths.map((p) => `${p.pair}: ${p.path}`)).toEqual(matrixPaths(after).map((p) => `${p.pair}: ${p.path}`))
    const kernel = await routeDisagreements(paths.map((p) => p.trace))
    expect(kernel.asked).toBeGreaterThan(0)
    expect(kernel.diffs).toEqual([])
    return {paths, set}
  }

  /** Which predicted pairs cross vxlan.calico: exactly those between the two subnets under CrossSubnet, all under Always. */
  function expectTunnelPairs(l: LabUp, paths: ReturnType<typeof matrixPaths>, crossSubnet: boolean): void {
    const subnetOf = (pod: string) =>
      l.nodes.find((n) => n.name === l.pods.find((p) => `${p.namespace}/${p.name}` === pod)!.node)!.subnet
    const tunnelled = paths.filter((p) => p.path.includes('vxlan.calico')).map((p) => p.pair)
    const want = paths
      .filter((p) => {
        const [src, dst] = p.pair.split(' → ') as [string, string]
        return !crossSubnet || subnetOf(src) !== subnetOf(dst)
      })
      .map((p) => p.pair)
    expect(tunnelled).toEqual(want)
    expect(want.length).toBeGreaterThan(0)
    // a routed lab has both kinds of pair: under CrossSubnet the proof covers native paths too
    if (crossSubnet) expect(want.length).toBeLessThan(paths.length)
  }

  it(
    'vxlan -> CrossSubnet: predicted as it happens; direct routes within a subnet, vxlan.calico across the router; every pod pair reachable',
    async () => {
      const {paths, set: r} = await switchAsPredicted('calico-vxlan-crosssubnet')
      expectTunnelPairs(lab.get(), paths, true)
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
    },
    LONG,
  )

  it(
    'calico-bgp is refused here (pairs across the router); CrossSubnet -> vxlan and back, each predicted as it happens',
    async () => {
      const bgp = await setBackend(lab.get(), 'calico-bgp')
      expect(bgp.code).toBe(4)
      expect(bgp.json.plan.preflight.notAdjacent.length).toBeGreaterThan(0)
      expect(bgp.json.message).toMatch(/BIRD's next hop is the peer node, resolved through the router/)

      const always = await switchAsPredicted('calico-vxlan')
      expectTunnelPairs(lab.get(), always.paths, false)
      for (const node of lab.get().nodes) {
        const routes = await ipJson<KernelRoute[]>(node.netns, ['route', 'show', 'proto', '80'])
        expect(routes.filter((r) => r.dev === 'eth0')).toEqual([])
      }
      await expectAllPodsReachable(lab.get())

      const back = await switchAsPredicted('calico-vxlan-crosssubnet')
      expectTunnelPairs(lab.get(), back.paths, true)
      await expectCrossSubnetRoutes()
      await expectAllPodsReachable(lab.get())
      await expectReported(lab.get(), 'calico-vxlan-crosssubnet')
    },
    LONG,
  )

  it(
    "calico-bgp --force across the router applies as predicted: BIRD's recursive routes via the router, exactly the pairs across it lost there; then back",
    async () => {
      const l = lab.get()
      const {predicted, set, applied} = await expectWhatIfIsTheSwitch(l, 'calico-bgp', ['--force'])
      expect(set.json).toMatchObject({outcome: 'applied', forced: true})
      // nothing refused by the kernel: BIRD's route to a peer behind the router goes via the router
      expect(predicted.refused).toEqual([])
      for (const node of l.nodes) {
        for (const peer of l.nodes.filter((p) => p !== node)) {
          const routes = await ipJson<KernelRoute[]>(node.netns, ['route', 'show', peer.podCIDR])
          // the peer itself on the subnet; across the router, the gateway the node's own route to the peer names
          const want =
            peer.subnet === node.subnet
              ? peer.ip
              : (await ipJson<KernelRoute[]>(node.netns, ['route', 'get', peer.ip]))[0]!.gateway
          expect(want, `${node.name} reaches ${peer.name}`).toBeDefined()
          expect(
            routes.map((r) => [r.gateway, r.dev, r.protocol]),
            `${node.name} -> ${peer.name}`,
          ).toEqual([[want, 'eth0', 'bird']])
        }
      }
      // the pairs the what-if says break are exactly those across the router, lost there (the router knows no pod route)
      const subnetOf = (pod: string) =>
        l.nodes.find((n) => n.name === l.pods.find((p) => `${p.namespace}/${p.name}` === pod)!.node)!.subnet
      const across = reachabilityMatrix(applied)
        .cells.filter((c) => subnetOf(c.src) !== subnetOf(c.dst))
        .map((c) => `${c.src} → ${c.dst}: NO_ROUTE`)
      expect(across.length).toBeGreaterThan(0)
      expect(predicted.matrix.changed.map((c) => `${c.src} → ${c.dst}: ${c.after.disposition}`).sort()).toEqual(
        across.sort(),
      )
      expect(set.json.verify.expected.length).toBeGreaterThan(0)
      // the kernel takes the route the predicted walks take, the delivered pairs' and the lost ones'
      const kernel = await routeDisagreements(matrixPaths(applied).map((p) => p.trace))
      expect(kernel.asked).toBeGreaterThan(0)
      expect(kernel.diffs).toEqual([])

      const back = await switchAsPredicted('calico-vxlan-crosssubnet')
      expectTunnelPairs(l, back.paths, true)
      await expectAllPodsReachable(l)
    },
    LONG,
  )
})
