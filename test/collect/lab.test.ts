import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {normalizeDst} from '../../src/collect/parse/iproute.js'
import {loadSnapshot, type Snapshot} from '../../src/model/snapshot.js'
import {NetnsTransport} from '../../src/transport/netns.js'
import {run} from '../../src/util/exec.js'
import {validatorFor} from '../../src/util/schema.js'
import {netctl} from '../helpers/cli.js'
import {describeLab, ipJson, nsExec, ping, useLab} from '../helpers/lab.js'

const dir = mkdtempSync(path.join(tmpdir(), 'col-lab-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** `netctl collect --lab NAME -o FILE` as a user runs it; the file must validate against the schema. */
async function collectLab(name: string): Promise<Snapshot> {
  const out = path.join(dir, `${name}.json`)
  const r = await netctl(['collect', '--lab', name, '--output-file', out])
  expect(r.code, r.stderr).toBe(0)
  // piped: nothing but the result (which went to the file)
  expect(r.stdout).toBe('')
  expect(r.stderr).toBe('')
  const raw = JSON.parse(readFileSync(out, 'utf8'))
  const validate = validatorFor('snapshot')
  expect(validate(raw), JSON.stringify(validate.errors)).toBe(true)
  return loadSnapshot(out)
}

type KernelRoute = {dst: string; gateway?: string; dev?: string}
const key = (r: KernelRoute) => `${normalizeDst(r.dst, 'inet')} via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}`

describeLab('collect: flannel vxlan lab through the netns transport', () => {
  const lab = useLab('col', ['--nodes', '3', '--backend', 'flannel-vxlan'])
  let snap: Snapshot
  beforeAll(async () => {
    snap = await collectLab(lab.get().name)
  })

  it('collects every node completely', () => {
    expect(snap.errors).toEqual([])
    expect(Object.keys(snap.nodeStates).sort()).toEqual(
      lab
        .get()
        .nodes.map((n) => n.name)
        .sort(),
    )
    expect(snap.cluster).toMatchObject({source: 'lab', name: lab.get().name, backend: 'flannel-vxlan'})
    for (const s of Object.values(snap.nodeStates)) {
      expect(Object.entries(s.sections).filter(([, v]) => v.status === 'error' || v.status === 'truncated')).toEqual([])
    }
  })

  it('holds the vxlan signature of every node, as the kernel has it', async () => {
    for (const node of lab.get().nodes) {
      const s = snap.nodeStates[node.name]!
      const [kernelVtep] = await ipJson(node.netns, ['-d', 'link', 'show', 'flannel.1'])
      const vtep = s.links.find((l) => l.name === 'flannel.1')!
      expect(vtep.vxlan).toMatchObject({vni: 1, port: 8472, learning: false, local: node.ip, dev: 'eth0'})
      expect(vtep.vxlan!.vni).toBe(kernelVtep.linkinfo.info_data.id)
      expect(vtep.mac).toBe(node.vtepMAC)
      for (const peer of lab.get().nodes.filter((n) => n !== node)) {
        const peerVtep = peer.podCIDR.split('/')[0]!
        expect(s.routes).toContainEqual(
          expect.objectContaining({dst: peer.podCIDR, gateway: peerVtep, dev: 'flannel.1', onlink: true}),
        )
        expect(s.neighbours).toContainEqual(
          expect.objectContaining({dst: peerVtep, lladdr: peer.vtepMAC, dev: 'flannel.1', state: ['PERMANENT']}),
        )
        expect(s.fdb).toContainEqual(
          expect.objectContaining({mac: peer.vtepMAC, dev: 'flannel.1', dst: peer.ip, self: true, permanent: true}),
        )
      }
      // the main table is exactly the kernel's
      const kernel = (await ipJson<KernelRoute[]>(node.netns, ['-4', 'route', 'show'])).map(key).sort()
      const mine = s.routes
        .filter((r) => r.family === 'inet' && r.table === 'main')
        .map((r) => key({dst: r.dst, ...(r.gateway ? {gateway: r.gateway} : {}), ...(r.dev ? {dev: r.dev} : {})}))
        .sort()
      expect(mine).toEqual(kernel)
      const fdb = await ipJson(node.netns, ['-d', 'link']) // keep the kernel honest about cni0 too
      expect(s.links.find((l) => l.name === 'cni0')!.ifindex).toBe(
        fdb.find((l: {ifname: string}) => l.ifname === 'cni0').ifindex,
      )
    }
  })

  it("has every pod's routes, and the pods really reach each other", async () => {
    const pods = lab.get().pods
    for (const pod of pods) {
      const state = snap.nodeStates[pod.node]!.pods.find((p) => p.name === pod.name)!
      const node = lab.get().nodes.find((n) => n.name === pod.node)!
      expect(state.netns).toBe(pod.netns)
      expect(state.addresses).toContainEqual(expect.objectContaining({dev: 'eth0', local: pod.ip}))
      expect(state.routes).toContainEqual(
        expect.objectContaining({dst: '0.0.0.0/0', gateway: node.podCIDR.replace(/0\/24$/, '1'), dev: 'eth0'}),
      )
    }
    expect(await ping(pods[0]!.netns, pods.at(-1)!.ip)).toBe(true)
  })

  it('subnet.env parsed, CNI files and plugins listed', () => {
    for (const node of lab.get().nodes) {
      const s = snap.nodeStates[node.name]!
      expect(s.flannelSubnetEnv).toMatchObject({
        FLANNEL_NETWORK: snap.cluster.clusterCIDR,
        FLANNEL_SUBNET: node.podCIDR.replace(/0\/24$/, '1/24'),
        FLANNEL_MTU: '1450',
      })
      expect(s.cni!.files.map((f) => f.name)).toEqual(['10-flannel.conflist'])
      expect(JSON.parse(s.cni!.files[0]!.content).plugins[0].type).toBe('flannel')
      expect(s.cni!.plugins).toEqual(expect.arrayContaining(['flannel', 'bridge', 'host-local', 'portmap']))
    }
  })

  it('without -o the snapshot goes to stdout, and only it', async () => {
    const r = await netctl(['collect', '--lab', lab.get().name, '--parallel', '1', '--timeout', '20'])
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    expect(validatorFor('snapshot')(JSON.parse(r.stdout))).toBe(true)
  })

  it('the netns transport stops a script past its timeout, with everything it started, and returns what it printed', async () => {
    const node = lab.get().nodes[0]!
    const r = await new NetnsTransport(node.netns).exec('echo started; sleep 37; echo never', {timeoutMs: 300})
    expect(r).toMatchObject({timedOut: true, stdout: 'started\n'})
    const pids = (await run('ip', ['netns', 'pids', node.netns])).stdout.split(/\s+/).filter(Boolean)
    const left = pids.filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() === 'sleep 37'
      } catch {
        return false
      }
    })
    expect(left).toEqual([])
  })

  it('hostile node, pod-netns and interface names are only ever data', async () => {
    const tag = Math.random().toString(36).slice(2, 5)
    const cwdFiles = [`cp1${tag}`, `cp2${tag}`, `cp3${tag}`, `cp4${tag}`]
    const tmpFiles = [1, 2, 3, 4, 5].map((i) => `/tmp/PWNED-${i}-${tag}`)
    const victim = lab.get().nodes[1]!
    // interfaces whose names are shell code (Linux allows quotes, ;, $ and parentheses)
    const evilLinks = [`v$(>cp1${tag})`, `v';>cp2${tag};'`]
    for (const [i, name] of evilLinks.entries()) {
      const r = await nsExec(victim.netns, [
        'ip',
        'link',
        'add',
        name,
        'type',
        'vxlan',
        'id',
        String(77 + i),
        'dstport',
        '4789',
        'dev',
        'eth0',
      ])
      expect(r.code, r.stderr).toBe(0)
    }
    const inv = parse(readFileSync(lab.get().inventory, 'utf8'))
    const evilNode = `node 2'; $(touch ${tmpFiles[0]}); "\n;`
    inv.nodes[1].name = evilNode
    for (const p of inv.pods) if (p.node === victim.name) p.node = evilNode
    const evilPods = [
      `x'; touch ${tmpFiles[1]}; '`,
      `$(touch ${tmpFiles[2]})`,
      `a\nb; touch ${tmpFiles[3]}`,
      `';>cp3${tag};'`,
    ]
    evilPods.forEach((netns, i) =>
      inv.pods.push({name: `evil-${i}`, namespace: 'default', node: evilNode, ip: `172.20.2.${200 + i}`, netns}),
    )
    inv.nodes.push({...inv.nodes[0], name: 'evil-a', access: {netns: `x'; touch ${tmpFiles[4]}; '`}})
    inv.nodes.push({...inv.nodes[0], name: 'evil-b', access: {netns: `';>cp4${tag};'`}})
    const file = path.join(dir, 'hostile.yaml')
    writeFileSync(file, stringify(inv))
    const out = path.join(dir, 'hostile.json')

    const r = await netctl(['collect', '--inventory', file, '--output-file', out])
    // evil-a and evil-b name namespaces that are not valid names: not collected (exit 3), the others written
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toMatch(/2 of 5 nodes could not be collected: evil-a: .*not a valid network namespace name/)
    for (const f of [...tmpFiles, ...cwdFiles.map((c) => path.resolve(c)), ...cwdFiles.map((c) => path.join('/', c))])
      expect(existsSync(f), f).toBe(false)

    const s = await loadSnapshot(out)
    const state = s.nodeStates[evilNode]!
    expect(state.node).toBe(evilNode)
    for (const name of evilLinks) {
      expect(state.links.map((l) => l.name)).toContain(name)
      expect(state.offloads![name]).toBeDefined()
      expect(Object.keys(state.sysctls)).toContain(`net.ipv4.conf.${name}.rp_filter`)
    }
    const evil = state.pods.filter((p) => p.name.startsWith('evil-'))
    expect(evil.map((p) => p.netns)).toEqual(evilPods)
    for (const p of evil) expect(p.sections!.netns!.status).toBe('error')
    expect(state.pods.filter((p) => !p.name.startsWith('evil-')).every((p) => p.sections!.netns!.status === 'ok')).toBe(
      true,
    )
    expect(s.errors).toEqual(
      expect.arrayContaining([
        {
          node: evilNode,
          code: 'COLLECTION_PARTIAL',
          message: expect.stringMatching(/^4 sections incomplete: pod default\/evil-0 netns/),
        },
        {
          node: 'evil-a',
          code: 'NODE_UNREACHABLE',
          message: expect.stringMatching(/not a valid network namespace name$/),
        },
        {node: 'evil-b', code: 'NODE_UNREACHABLE', message: expect.stringMatching(/no such network namespace$/)},
      ]),
    )
    // the other nodes are untouched by all this
    expect(s.nodeStates[lab.get().nodes[0]!.name]!.sections.links!.status).toBe('ok')
  })
})

describeLab('collect: flannel host-gw lab', () => {
  const lab = useLab('col', ['--nodes', '3', '--backend', 'flannel-host-gw'])

  it('per-peer routes via the peer node IP on eth0, no vxlan device, pods reachable', async () => {
    const snap = await collectLab(lab.get().name)
    expect(snap.errors).toEqual([])
    for (const node of lab.get().nodes) {
      const s = snap.nodeStates[node.name]!
      expect(s.links.some((l) => l.kind === 'vxlan')).toBe(false)
      for (const peer of lab.get().nodes.filter((n) => n !== node)) {
        expect(s.routes).toContainEqual(
          expect.objectContaining({dst: peer.podCIDR, gateway: peer.ip, dev: 'eth0', onlink: false}),
        )
        // the kernel agrees on the next hop
        const got = await nsExec(node.netns, ['ip', '-j', 'route', 'get', peer.podCIDR.replace(/0\/24$/, '2')])
        expect(JSON.parse(got.stdout)[0]).toMatchObject({gateway: peer.ip, dev: 'eth0'})
      }
      expect(s.flannelSubnetEnv!.FLANNEL_MTU).toBe('1500')
    }
    const pods = lab.get().pods
    expect(await ping(pods[0]!.netns, pods.at(-1)!.ip)).toBe(true)
  })
})
