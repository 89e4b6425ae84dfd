import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {normalizeDst} from '../../src/collect/parse/iproute.js'
import {loadSnapshot, type Snapshot} from '../../src/model/snapshot.js'
import {validatorFor} from '../../src/util/schema.js'
import {netctl} from '../helpers/cli.js'
import {describeLab, ipJson, nsExec, ping, useLab} from '../helpers/lab.js'

const dir = mkdtempSync(path.join(tmpdir(), 'col-labb-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** `netctl collect ARGS -o FILE` as a user runs it; the file must validate against the schema. */
/** exit 3 where a node is expected not to answer: the others are still written */
async function collect(args: string[], name: string, code = 0): Promise<Snapshot> {
  const out = path.join(dir, `${name}.json`)
  const r = await netctl(['collect', ...args, '--output-file', out])
  expect(r.code, r.stderr).toBe(code)
  const validate = validatorFor('snapshot')
  expect(validate(JSON.parse(readFileSync(out, 'utf8'))), JSON.stringify(validate.errors)).toBe(true)
  return loadSnapshot(out)
}

type KernelRoute = {dst: string; gateway?: string; dev?: string; type?: string}
const key = (r: KernelRoute) =>
  `${r.type ?? 'unicast'} ${normalizeDst(r.dst, 'inet')} via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}`

describeLab('collect: Calico BGP mesh lab', () => {
  const lab = useLab('col', ['--nodes', '3', '--backend', 'calico-bgp'])

  it('BIRD sessions and the routes BIRD installed, as the kernel has them; pods reachable', async () => {
    const snap = await collect(['--lab', lab.get().name], 'calico-bgp')
    expect(snap.errors).toEqual([])
    for (const node of lab.get().nodes) {
      const s = snap.nodeStates[node.name]!
      const peers = lab.get().nodes.filter((n) => n !== node)
      expect(s.bird!.sessions.map((x) => [x.neighborAddress, x.bgpState]).sort()).toEqual(
        peers.map((p) => [p.ip, 'Established']).sort(),
      )
      const kernel = (await ipJson<KernelRoute[]>(node.netns, ['route', 'show', 'proto', 'bird'])).map(key).sort()
      const mine = s.routes
        .filter((r) => r.protocol === 'bird' && r.family === 'inet' && r.table === 'main')
        .map((r) =>
          key({dst: r.dst, type: r.type, ...(r.gateway ? {gateway: r.gateway} : {}), ...(r.dev ? {dev: r.dev} : {})}),
        )
        .sort()
      expect(mine).toEqual(kernel)
      expect(mine.length).toBe(peers.length + 1)
      for (const pod of lab.get().pods.filter((p) => p.node === node.name)) {
        expect(s.routes).toContainEqual(expect.objectContaining({dst: `${pod.ip}/32`, scope: 'link'}))
      }
      expect(
        Object.entries(s.sysctls).filter(([k, v]) => /\.cali[0-9a-f]+\.proxy_arp$/.test(k) && v === '1'),
      ).toHaveLength(2)
    }
    const pods = lab.get().pods
    expect(await ping(pods[0]!.netns, pods.at(-1)!.ip)).toBe(true)
  })
})

describeLab('collect: Calico with a route reflector', () => {
  const lab = useLab('col', ['--nodes', '3', '--backend', 'calico-rr', '--route-reflectors', '1'])

  it('the reflector has a session to every client, each client one to the reflector', async () => {
    const snap = await collect(['--lab', lab.get().name], 'calico-rr')
    expect(snap.errors).toEqual([])
    const rr = lab.get().nodes.find((n) => n.routeReflector)!
    const clients = lab.get().nodes.filter((n) => !n.routeReflector)
    expect(snap.nodeStates[rr.name]!.bird!.sessions.map((s) => s.neighborAddress).sort()).toEqual(
      clients.map((c) => c.ip).sort(),
    )
    for (const c of clients) {
      const sessions = snap.nodeStates[c.name]!.bird!.sessions
      expect(sessions.map((s) => [s.neighborAddress, s.bgpState])).toEqual([[rr.ip, 'Established']])
    }
  })
})

describeLab('collect: Calico VXLAN lab', () => {
  const lab = useLab('col', ['--nodes', '3', '--backend', 'calico-vxlan'])

  it('vxlan.calico with its per-peer FDB entries and neighbours, as the kernel has them', async () => {
    const snap = await collect(['--lab', lab.get().name], 'calico-vxlan')
    expect(snap.errors).toEqual([])
    for (const node of lab.get().nodes) {
      const s = snap.nodeStates[node.name]!
      const [k] = await ipJson(node.netns, ['-d', 'link', 'show', 'vxlan.calico'])
      expect(s.links.find((l) => l.name === 'vxlan.calico')!.vxlan).toMatchObject({
        vni: k.linkinfo.info_data.id,
        port: k.linkinfo.info_data.port,
        learning: false,
      })
      expect(k.linkinfo.info_data.id).toBe(4096)
      const kernelFdb = JSON.parse(
        (await nsExec(node.netns, ['bridge', '-j', 'fdb', 'show', 'dev', 'vxlan.calico'])).stdout,
      ) as Array<{mac: string; dst?: string}>
      const mine = s.fdb.filter((f) => f.dev === 'vxlan.calico')
      expect(mine.map((f) => `${f.mac} ${f.dst}`).sort()).toEqual(kernelFdb.map((f) => `${f.mac} ${f.dst}`).sort())
      for (const peer of lab.get().nodes.filter((n) => n !== node)) {
        expect(s.fdb).toContainEqual(
          expect.objectContaining({mac: peer.vtepMAC, dev: 'vxlan.calico', dst: peer.ip, permanent: true}),
        )
        expect(s.routes).toContainEqual(expect.objectContaining({dst: peer.podCIDR, dev: 'vxlan.calico', onlink: true}))
      }
    }
    const pods = lab.get().pods
    expect(await ping(pods[0]!.netns, pods.at(-1)!.ip)).toBe(true)
  })
})

describeLab('collect: flannel udp lab', () => {
  const lab = useLab('col', ['--nodes', '3', '--backend', 'flannel-udp'])

  it('flannel0, the cluster route to it, and the forwarder process of each node', async () => {
    const snap = await collect(['--lab', lab.get().name], 'flannel-udp')
    expect(snap.errors).toEqual([])
    for (const node of lab.get().nodes) {
      const s = snap.nodeStates[node.name]!
      expect(s.links.find((l) => l.name === 'flannel0')).toMatchObject({kind: 'tun', tun: {type: 'tun', pi: false}})
      expect(s.routes).toContainEqual(expect.objectContaining({dst: snap.cluster.clusterCIDR, dev: 'flannel0'}))
      expect(s.processes.filter((p) => /netctl-udp-forwarder/.test(p.args))).toHaveLength(1)
    }
  })
})

describeLab('collect: over ssh (lab up --ssh)', () => {
  const lab = useLab('col', ['--nodes', '3', '--ssh'])

  it('--transport ssh sees what the netns transport sees; an ssh node that refuses is recorded, the others collected', async () => {
    const viaNetns = await collect(['--lab', lab.get().name], 'ssh-netns')
    const viaSsh = await collect(['--lab', lab.get().name, '--transport', 'ssh'], 'ssh-ssh')
    expect(viaSsh.errors).toEqual([])
    // IPv4 state and the vxlan FDB are fixed once the lab is up (IPv6 link-local addresses and
    // learned bridge entries still come and go between the two runs)
    const v4 = (s: Snapshot['nodeStates'][string]) => s.routes.filter((r) => r.family === 'inet')
    for (const node of lab.get().nodes) {
      const a = viaSsh.nodeStates[node.name]!
      const b = viaNetns.nodeStates[node.name]!
      expect(v4(a)).toEqual(v4(b))
      expect(a.fdb.filter((f) => f.dev === 'flannel.1')).toEqual(b.fdb.filter((f) => f.dev === 'flannel.1'))
      expect(a.links.map((l) => l.name)).toEqual(b.links.map((l) => l.name))
      expect(a.pods.map((p) => p.routes.filter((r) => r.family === 'inet'))).toEqual(
        b.pods.map((p) => p.routes.filter((r) => r.family === 'inet')),
      )
    }
    // node2's sshd is asked for on a port nothing listens on
    const inv = parse(readFileSync(lab.get().inventory, 'utf8'))
    inv.nodes[1].access.ssh.port = 2
    const file = path.join(dir, 'ssh-refused.yaml')
    writeFileSync(file, stringify(inv))
    const snap = await collect(['--inventory', file, '--transport', 'ssh', '--timeout', '10'], 'ssh-refused', 3)
    expect(Object.keys(snap.nodeStates).sort()).toEqual(['node1', 'node3'])
    expect(snap.errors).toEqual([
      {node: 'node2', code: 'NODE_UNREACHABLE', message: expect.stringMatching(/^ssh 172\.31\.0\.12: /)},
    ])
  })
})
