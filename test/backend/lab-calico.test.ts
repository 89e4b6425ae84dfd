import path from 'node:path'

import {expect, it} from 'vitest'

import {parseBirdProtocols} from '../../src/collect/parse/bird.js'
import {netctlJson} from '../helpers/cli.js'
import {describeLab, ipJson, nsExec, useLab} from '../helpers/lab.js'
import {expectAllPodsReachable, expectReported, kernelOfLab, setBackend} from './lab-helpers.js'

describeLab('backend set on a flat Calico lab: bgp -> vxlan -> bgp', () => {
  const lab = useLab('bk', ['--nodes', '3', '--pods-per-node', '1', '--backend', 'calico-bgp'])

  /** Every BGP session of every node with the time BIRD last changed its state: a reset session gets a new one. */
  async function sessions(): Promise<Record<string, string>> {
    const out: Record<string, string> = {}
    for (const n of lab.get().nodes) {
      const socket = path.join(lab.get().stateDir, 'nodes', n.name, 'run/calico/bird.ctl')
      const r = await nsExec(n.netns, ['birdc', '-s', socket, 'show', 'protocols'])
      for (const row of parseBirdProtocols(r.stdout))
        out[`${n.name} ${row.name}`] = `${row.bgpState} since ${row.since}`
    }
    return out
  }

  type KernelRoute = {dst: string; gateway?: string; dev?: string; protocol?: string; flags?: string[]}
  async function routeTo(netns: string, block: string): Promise<KernelRoute[]> {
    return ipJson<KernelRoute[]>(netns, ['route', 'show', block])
  }

  let established: Record<string, string> = {}

  /**
   * The same sessions, in the same state, not reset: BIRD keeps the time of
   * a session's last change on its monotonic clock and prints it as wall
   * time read once per turn of its event loop, so two reads differ by that
   * loop's latency (80 ms seen on a loaded CI machine); a reset session's
   * time moves past the start of the switch, seconds after the first read.
   */
  function expectSameSessions(now: Record<string, string>, before: Record<string, string>): void {
    const ms = (since: string): number => {
      const [h, m, sec] = since.split(' since ')[1]!.split(':').map(Number)
      return ((h! * 60 + m!) * 60 + sec!) * 1000
    }
    expect(Object.keys(now).sort(), 'BGP sessions').toEqual(Object.keys(before).sort())
    for (const [k, v] of Object.entries(now)) {
      expect(v.split(' ')[0], `${k} state`).toBe(before[k]!.split(' ')[0])
      expect(Math.abs(ms(v) - ms(before[k]!)), `${k}: ${v}, was ${before[k]}`).toBeLessThanOrEqual(1000)
    }
  }

  it('starts as calico-bgp: routes proto bird via each peer over eth0, every session Established', async () => {
    established = await sessions()
    expect(Object.keys(established)).toHaveLength(6)
    for (const s of Object.values(established)) expect(s).toMatch(/^Established/)
    for (const node of lab.get().nodes) {
      for (const peer of lab.get().nodes.filter((p) => p !== node)) {
        expect((await routeTo(node.netns, peer.podCIDR)).map((r) => [r.gateway, r.dev, r.protocol])).toEqual([
          [peer.ip, 'eth0', 'bird'],
        ])
      }
    }
    await expectReported(lab.get(), 'calico-bgp')
  })

  it('bgp -> vxlan: Felix-style routes via vxlan.calico onlink, sessions never reset, pods reachable', async () => {
    // pods keep eth0 1500 under vxlan.calico's 1450: the what-if refuses it without --force
    const r = await setBackend(lab.get(), 'calico-vxlan', ['--force'])
    expect(r.code, r.json.message).toBe(0)
    expect(r.json.forced).toBe(true)
    expect(r.json.message).toContain('full-size packets (1500 bytes, DF) would die')
    for (const node of lab.get().nodes) {
      expect(await ipJson(node.netns, ['route', 'show', 'proto', 'bird'])).toEqual([])
      for (const peer of lab.get().nodes.filter((p) => p !== node)) {
        const routes = await routeTo(node.netns, peer.podCIDR)
        expect(
          routes.map((x) => [x.gateway, x.dev, x.protocol, x.flags]),
          `${node.name} -> ${peer.name}`,
        ).toEqual([[peer.podCIDR.split('/')[0], 'vxlan.calico', '80', ['onlink']]])
      }
    }
    expectSameSessions(await sessions(), established)
    await expectAllPodsReachable(lab.get())
    await expectReported(lab.get(), 'calico-vxlan')
  })

  it('vxlan -> bgp: BIRD programs the blocks again via eth0, vxlan.calico is gone, sessions still the same', async () => {
    const r = await setBackend(lab.get(), 'calico-bgp')
    expect(r.code, r.json.message).toBe(0)
    for (const node of lab.get().nodes) {
      expect(await ipJson(node.netns, ['link', 'show', 'type', 'vxlan'])).toEqual([])
      for (const peer of lab.get().nodes.filter((p) => p !== node)) {
        const routes = await routeTo(node.netns, peer.podCIDR)
        expect(
          routes.map((x) => [x.gateway, x.dev, x.protocol]),
          `${node.name} -> ${peer.name}`,
        ).toEqual([[peer.ip, 'eth0', 'bird']])
      }
    }
    expectSameSessions(await sessions(), established)
    await expectAllPodsReachable(lab.get())
    await expectReported(lab.get(), 'calico-bgp')
  })

  it('calico-ipip: planned, but refused by preflight (no ipip module in this kernel); nothing changed', async () => {
    const plan = await netctlJson(['backend', 'plan', 'calico-ipip', '--lab', lab.get().name])
    expect(plan.code).toBe(4)
    const tunl0 = plan.json.nodes[0].diff.links.add
    expect(tunl0).toEqual([
      expect.stringMatching(/^tunl0: <NOARP,UP,LOWER_UP> mtu 1480 state UNKNOWN link\/none ipip$/),
    ])
    const before = await kernelOfLab(lab.get())
    const r = await setBackend(lab.get(), 'calico-ipip')
    expect(r.code).toBe(4)
    const finding = r.json.plan.preflight.findings.find((f: {code: string}) => f.code === 'KERNEL_MODULE_MISSING')
    expect(finding.message).toMatch(/ipip/)
    expect(r.json.message).toMatch(/^refused by preflight \(KERNEL_MODULE_MISSING\)/)
    expect(await kernelOfLab(lab.get())).toEqual(before)
  })

  it('a Flannel backend on a Calico cluster is refused: another CNI would recreate every pod', async () => {
    const r = await setBackend(lab.get(), 'flannel-vxlan')
    expect(r.code).toBe(4)
    expect(r.json.plan.preflight.findings.map((f: {code: string}) => f.code)).toContain('BACKEND_FAMILY_CHANGE')
  })
})
