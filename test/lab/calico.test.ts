import {readdir, readFile} from 'node:fs/promises'

import {expect, it} from 'vitest'

import {cidrContainsAddress as cidrContains} from '../../src/analyze/ip.js'
import type {NodeFacts} from '../../src/lab/files.js'
import {nodePaths} from '../../src/lab/files.js'
import {loadRecord} from '../../src/lab/state.js'
import type {LabStatus} from '../../src/lab/status.js'
import type {LabNode, LabRecord} from '../../src/lab/types.js'
import {run} from '../../src/util/exec.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {describeLab, ipJson, nsExec, ping, useLab} from '../helpers/lab.js'

const PREFIX = 'cal'

interface Route {
  dst: string
  type?: string
  gateway?: string
  dev?: string
  protocol?: string
  scope?: string
  flags?: string[]
}

/** Processes whose command line mentions `needle` (e.g. a BIRD control socket path). */
async function processesMentioning(needle: string): Promise<string[]> {
  const found: string[] = []
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(needle)) found.push(`${pid}: ${cmdline.replaceAll('\0', ' ')}`)
  }
  return found
}

/** The BGP protocols `birdc show protocols` lists on a node, straight from BIRD. */
async function birdcBgp(node: LabNode): Promise<Array<{name: string; info: string}>> {
  const r = await nsExec(node.netns, ['birdc', '-s', nodePaths(node).birdSocket, 'show', 'protocols'])
  expect(r.code, r.stderr).toBe(0)
  return r.stdout
    .split('\n')
    .map((l) => /^(\S+)\s+BGP\s+\S+\s+\S+\s+\S+\s+(.*)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({name: m[1]!, info: m[2]!.trim()}))
}

const others = (rec: LabRecord, node: LabNode): LabNode[] => rec.nodes.filter((n) => n.name !== node.name)
const nodeOf = (rec: LabRecord, name: string): LabNode => rec.nodes.find((n) => n.name === name)!

/** One pod on every node pings one pod on every other node, and a neighbour on its own node. */
async function expectPodsReachEachOther(rec: LabRecord): Promise<void> {
  const failed: string[] = []
  for (const a of rec.pods) {
    const targets = [
      ...rec.nodes.filter((n) => n.name !== a.node).map((n) => rec.pods.find((p) => p.node === n.name)!),
      ...rec.pods.filter((p) => p.node === a.node && p !== a).slice(0, 1),
    ]
    for (const b of targets) if (!(await ping(a.netns, b.ip))) failed.push(`${a.name} -> ${b.name} (${b.ip})`)
  }
  expect(failed).toEqual([])
}

describeLab('calico-bgp on a flat underlay', () => {
  const lab = useLab(PREFIX, ['--backend', 'calico-bgp', '--nodes', '3', '--pods-per-node', '2'])
  let rec: LabRecord
  const record = async (): Promise<LabRecord> => (rec ??= await loadRecord(lab.get().name))

  it('brings every BIRD session to Established (lab status and birdc agree)', async () => {
    const r = await record()
    expect(lab.get().warnings).toEqual([])
    const status = await netctlJson<LabStatus>(['lab', 'status', '--name', r.name])
    expect(status.code).toBe(0)
    const bgp = status.json.bgp ?? []
    expect(bgp).toHaveLength(r.nodes.length * (r.nodes.length - 1))
    for (const node of r.nodes) {
      const mine = bgp.filter((s) => s.node === node.name)
      expect(mine.map((s) => s.peer).sort()).toEqual(
        others(r, node)
          .map((n) => n.name)
          .sort(),
      )
      expect(mine.every((s) => s.state === 'Established')).toBe(true)
      const fromBird = await birdcBgp(node)
      expect(fromBird.map((p) => p.name).sort()).toEqual(
        others(r, node)
          .map((n) => `Mesh_${n.ip.replaceAll('.', '_')}`)
          .sort(),
      )
      for (const p of fromBird) expect(p.info).toMatch(/^Established/)
    }
  })

  it('installs every peer block via the peer node, proto bird, and its own block as a blackhole', async () => {
    const r = await record()
    for (const node of r.nodes) {
      // (filtered by proto, ip -j leaves the protocol out of each route)
      const routes = await ipJson<Route[]>(node.netns, ['route', 'show', 'proto', 'bird'])
      for (const peer of others(r, node)) {
        expect(routes).toContainEqual(expect.objectContaining({dst: peer.podCIDR, gateway: peer.ip, dev: 'eth0'}))
      }
      expect(routes).toContainEqual(expect.objectContaining({type: 'blackhole', dst: node.podCIDR}))
      // BIRD writes pool routes only; the connected underlay route stays the kernel's own
      for (const route of routes) expect(cidrContains(r.clusterCIDR, route.dst.split('/')[0]!)).toBe(true)
    }
  })

  it('routes a packet for a remote pod to the node that owns it (ip route get)', async () => {
    const r = await record()
    for (const node of r.nodes) {
      for (const pod of r.pods.filter((p) => p.node !== node.name)) {
        const [got] = await ipJson<Route[]>(node.netns, ['route', 'get', pod.ip])
        expect(got?.gateway).toBe(nodeOf(r, pod.node).ip)
        expect(got?.dev).toBe('eth0')
      }
    }
  })

  it('plumbs pods the Calico way: 169.254.1.1 default, proxy ARP and a /32 scope link route per cali veth', async () => {
    const r = await record()
    for (const pod of r.pods) {
      const node = nodeOf(r, pod.node)
      const podRoutes = await ipJson<Route[]>(pod.netns, ['route', 'show'])
      expect(podRoutes).toContainEqual(expect.objectContaining({dst: 'default', gateway: '169.254.1.1', dev: 'eth0'}))
      const proxyArp = await nsExec(node.netns, ['cat', `/proc/sys/net/ipv4/conf/${pod.hostVeth}/proxy_arp`])
      expect(proxyArp.stdout.trim()).toBe('1')
      const hostRoutes = await ipJson<Route[]>(node.netns, ['route', 'show', `${pod.ip}/32`])
      expect(hostRoutes).toEqual([expect.objectContaining({dst: pod.ip, dev: pod.hostVeth, scope: 'link'})])
      const [link] = await ipJson<Array<{address: string}>>(node.netns, ['link', 'show', pod.hostVeth])
      expect(link?.address).toBe('ee:ee:ee:ee:ee:ee')
    }
  })

  it('connects pods on different nodes and on the same node', async () => {
    await expectPodsReachEachOther(await record())
  })

  it('records the node facts calico/node would write', async () => {
    const r = await record()
    for (const node of r.nodes) {
      const facts = JSON.parse(await readFile(nodePaths(node).facts, 'utf8')) as NodeFacts
      expect(facts.annotations['projectcalico.org/IPv4Address']).toBe(`${node.ip}/${node.subnet.split('/')[1]}`)
      expect(facts.annotations['projectcalico.org/ASNumber']).toBe(String(r.asNumber))
      expect(facts.annotations['projectcalico.org/IPv4VXLANTunnelAddr']).toBeUndefined()
    }
  })

  it('leaves no BIRD and no namespace behind after lab down', async () => {
    const r = await record()
    const sockets = r.nodes.map((n) => nodePaths(n).birdSocket)
    for (const s of sockets) expect(await processesMentioning(s)).toHaveLength(1)
    const down = await netctl(['lab', 'down', '--name', r.name])
    expect(down.code, down.stderr).toBe(0)
    for (const s of sockets) expect(await processesMentioning(s)).toEqual([])
    const netns = await run('ip', ['netns', 'list'])
    expect(netns.stdout.split('\n').filter((l) => l.startsWith(`${r.name}.`))).toEqual([])
  })
})

describeLab('calico-rr: 4 nodes, 1 route reflector', () => {
  const lab = useLab(PREFIX, [
    '--backend',
    'calico-rr',
    '--nodes',
    '4',
    '--route-reflectors',
    '1',
    '--pods-per-node',
    '1',
  ])
  let rec: LabRecord
  const record = async (): Promise<LabRecord> => (rec ??= await loadRecord(lab.get().name))

  it('peers clients with the reflector only, every session Established', async () => {
    const r = await record()
    expect(lab.get().warnings).toEqual([])
    const reflectors = r.nodes.filter((n) => n.routeReflector)
    expect(reflectors.map((n) => n.name)).toEqual(['node1'])
    const status = await netctlJson<LabStatus>(['lab', 'status', '--name', r.name])
    expect(status.code).toBe(0)
    const bgp = status.json.bgp ?? []
    expect(bgp.every((s) => s.state === 'Established')).toBe(true)
    for (const node of r.nodes) {
      const mine = bgp
        .filter((s) => s.node === node.name)
        .map((s) => s.peer)
        .sort()
      const fromBird = (await birdcBgp(node)).map((p) => p.name).sort()
      if (node.routeReflector) {
        expect(mine).toEqual(
          others(r, node)
            .map((n) => n.name)
            .sort(),
        )
        expect(fromBird).toHaveLength(r.nodes.length - 1)
      } else {
        expect(mine).toEqual(['node1'])
        expect(fromBird).toEqual([`Node_${reflectors[0]!.ip.replaceAll('.', '_')}`])
      }
    }
  })

  it('keeps the next hop: a client routes each block via the node that owns it, not via the reflector', async () => {
    const r = await record()
    for (const client of r.nodes.filter((n) => !n.routeReflector)) {
      const routes = await ipJson<Route[]>(client.netns, ['route', 'show', 'proto', 'bird'])
      for (const origin of others(r, client)) {
        expect(routes).toContainEqual(expect.objectContaining({dst: origin.podCIDR, gateway: origin.ip, dev: 'eth0'}))
      }
      for (const pod of r.pods.filter((p) => p.node !== client.name)) {
        const [got] = await ipJson<Route[]>(client.netns, ['route', 'get', pod.ip])
        expect(got?.gateway).toBe(nodeOf(r, pod.node).ip)
      }
    }
  })

  it('connects every pod', async () => {
    await expectPodsReachEachOther(await record())
  })

  it('records the reflector cluster ID on reflectors only', async () => {
    const r = await record()
    for (const node of r.nodes) {
      const facts = JSON.parse(await readFile(nodePaths(node).facts, 'utf8')) as NodeFacts
      expect('projectcalico.org/RouteReflectorClusterID' in facts.annotations).toBe(node.routeReflector)
    }
  })
})

describeLab('calico-bgp on the routed underlay: no encapsulation across the router', () => {
  const lab = useLab(PREFIX, [
    '--backend',
    'calico-bgp',
    '--topology',
    'routed',
    '--nodes',
    '3',
    '--pods-per-node',
    '1',
  ])
  let rec: LabRecord
  const record = async (): Promise<LabRecord> => (rec ??= await loadRecord(lab.get().name))

  it('says up front, and from the kernel, that blocks across the router resolve to the router', async () => {
    const r = await record()
    const warnings = lab.get().warnings
    expect(warnings.some((w) => /routed topology/.test(w) && /router/.test(w))).toBe(true)
    const farRoutes: string[] = []
    for (const node of r.nodes) {
      const routes = await ipJson<Route[]>(node.netns, ['route', 'show', 'proto', 'bird'])
      const gateway = r.subnets.find((x) => x.cidr === node.subnet)!.gateway!
      for (const peer of others(r, node)) {
        const route = routes.find((x) => x.dst === peer.podCIDR)
        // sessions cross the router (multihop), but the next hop of a far block is only reachable through it
        expect(route?.gateway).toBe(peer.subnet === node.subnet ? peer.ip : gateway)
        if (peer.subnet !== node.subnet) farRoutes.push(`${node.name}: ${peer.podCIDR} via ${gateway}`)
      }
    }
    // lab up reports what the kernel actually holds
    expect(farRoutes.length).toBeGreaterThan(0)
    expect(farRoutes.some((f) => warnings.some((w) => w.includes(f)))).toBe(true)
  })

  it('has every session Established, reaches pods on its own subnet, and not across the router', async () => {
    const r = await record()
    const status = await netctlJson<LabStatus>(['lab', 'status', '--name', r.name])
    expect(status.json.bgp?.every((s) => s.state === 'Established')).toBe(true)
    // unreachable pairs make status a fault
    expect(status.code).toBe(1)
    for (const a of r.pods) {
      for (const b of r.pods.filter((p) => p.node !== a.node)) {
        const sameSubnet = nodeOf(r, a.node).subnet === nodeOf(r, b.node).subnet
        expect(await ping(a.netns, b.ip, 1), `${a.name} -> ${b.name}`).toBe(sameSubnet)
      }
    }
  })
})

for (const topology of ['flat', 'routed'] as const) {
  describeLab(`calico-vxlan on a ${topology} underlay`, () => {
    const lab = useLab(PREFIX, [
      '--backend',
      'calico-vxlan',
      '--topology',
      topology,
      '--nodes',
      '3',
      '--pods-per-node',
      '1',
    ])
    let rec: LabRecord
    const record = async (): Promise<LabRecord> => (rec ??= await loadRecord(lab.get().name))

    it('has vxlan.calico: VNI 4096, UDP 4789, MTU 1450, the node VTEP MAC, tunnel address, no learning', async () => {
      const r = await record()
      for (const node of r.nodes) {
        const [link] = await ipJson<any[]>(node.netns, ['-d', 'link', 'show', 'vxlan.calico'])
        const vx = link.linkinfo.info_data
        expect(link.linkinfo.info_kind).toBe('vxlan')
        expect(vx.id).toBe(4096)
        expect(vx.port).toBe(4789)
        expect(vx.local).toBe(node.ip)
        expect(vx.link).toBe('eth0')
        expect(vx.learning).toBe(false)
        expect(link.mtu).toBe(r.underlayMTU - 50)
        expect(link.address).toBe(node.vtepMAC)
        const [addr] = await ipJson<any[]>(node.netns, ['-4', 'addr', 'show', 'vxlan.calico'])
        expect(addr.addr_info).toEqual([expect.objectContaining({local: node.tunnelIP, prefixlen: 32})])
      }
    })

    it('programs per peer what Felix does: onlink route proto 80, PERMANENT neighbour, self permanent FDB', async () => {
      const r = await record()
      for (const node of r.nodes) {
        const routes = await ipJson<Route[]>(node.netns, ['route', 'show', 'dev', 'vxlan.calico'])
        const neigh = await ipJson<Array<{dst: string; lladdr: string; state: string[]}>>(node.netns, [
          'neigh',
          'show',
          'dev',
          'vxlan.calico',
        ])
        const fdb = JSON.parse(
          (await run('bridge', ['-n', node.netns, '-j', 'fdb', 'show', 'dev', 'vxlan.calico'])).stdout,
        ) as Array<{mac: string; dst?: string; flags: string[]; state: string}>
        for (const peer of others(r, node)) {
          expect(routes).toContainEqual(
            expect.objectContaining({dst: peer.podCIDR, gateway: peer.tunnelIP, protocol: '80', flags: ['onlink']}),
          )
          expect(neigh).toContainEqual({dst: peer.tunnelIP, lladdr: peer.vtepMAC, state: ['PERMANENT']})
          expect(fdb).toContainEqual(
            expect.objectContaining({mac: peer.vtepMAC, dst: peer.ip, flags: ['self'], state: 'permanent'}),
          )
        }
        const blackholes = await ipJson<Route[]>(node.netns, ['route', 'show', 'type', 'blackhole'])
        expect(blackholes).toEqual([expect.objectContaining({dst: node.podCIDR, protocol: '80'})])
        // BIRD runs, but pool routes are Felix's: none of BIRD's in the kernel
        const fromBird = await ipJson<Route[]>(node.netns, ['route', 'show', 'proto', 'bird'])
        expect(fromBird.filter((x) => cidrContains(r.clusterCIDR, x.dst.split('/')[0]!))).toEqual([])
      }
    })

    it('keeps BIRD sessions Established and lab status healthy', async () => {
      const r = await record()
      expect(lab.get().warnings).toEqual([])
      const status = await netctlJson<LabStatus>(['lab', 'status', '--name', r.name])
      expect(status.code).toBe(0)
      expect(status.json.bgp).toHaveLength(r.nodes.length * (r.nodes.length - 1))
      expect(status.json.bgp?.every((s) => s.state === 'Established')).toBe(true)
      expect(status.json.reachability?.failed).toEqual([])
    })

    it(`connects pods across nodes${topology === 'routed' ? ', also across the router' : ''}, with pod MTU 1450`, async () => {
      const r = await record()
      if (topology === 'routed') expect(new Set(r.nodes.map((n) => n.subnet)).size).toBe(2)
      await expectPodsReachEachOther(r)
      for (const pod of r.pods) {
        const [eth0] = await ipJson<Array<{mtu: number}>>(pod.netns, ['link', 'show', 'eth0'])
        expect(eth0?.mtu).toBe(r.underlayMTU - 50)
      }
    })
  })
}
