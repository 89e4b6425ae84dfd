import {existsSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import {validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {describeLab, ipJson, nsExec, ping, uniqueLabName, useLab} from '../helpers/lab.js'

/** Every ordered pod pair pings, checked by the kernel, not by netctl. */
async function expectAllPodsReach(pods: Array<{netns: string; ip: string; name: string}>): Promise<void> {
  const failures: string[] = []
  for (const a of pods)
    for (const b of pods) if (a !== b && !(await ping(a.netns, b.ip))) failures.push(`${a.name} -> ${b.name}`)
  expect(failures).toEqual([])
}

describeLab('lab: flannel vxlan, flat', () => {
  const lab = useLab('flv', ['--nodes', '3', '--backend', 'flannel-vxlan'])

  it('prints lab up --json as its schema says', () => {
    const validate = validatorFor('lab-up')
    expect(validate(lab.get()), JSON.stringify(validate.errors)).toBe(true)
    expect(lab.get().nodes).toHaveLength(3)
    expect(lab.get().pods).toHaveLength(6)
  })

  it('gives every pod pair, same node and across nodes, real connectivity', async () => {
    await expectAllPodsReach(lab.get().pods)
  })

  it('programs the flannel vxlan signature on every node', async () => {
    const {nodes} = lab.get()
    for (const node of nodes) {
      const links = await ipJson(node.netns, ['-d', 'link', 'show'])
      const vx = links.find((l: any) => l.ifname === 'flannel.1')
      expect(vx?.linkinfo?.info_kind).toBe('vxlan')
      expect(vx.linkinfo.info_data.id).toBe(1)
      expect(vx.linkinfo.info_data.port).toBe(8472)
      expect(vx.linkinfo.info_data.learning).toBe(false)
      expect(vx.linkinfo.info_data.local).toBe(node.ip)
      expect(vx.mtu).toBe(1450)
      expect(vx.address).toBe(node.vtepMAC)
      const eth0 = links.find((l: any) => l.ifname === 'eth0')
      expect(vx.mtu).toBe(eth0.mtu - 50)
      const cni0 = links.find((l: any) => l.ifname === 'cni0')
      expect(cni0?.linkinfo?.info_kind).toBe('bridge')

      const addrs = await ipJson(node.netns, ['addr', 'show', 'dev', 'flannel.1'])
      const vtepAddr = node.podCIDR.replace(/\/\d+$/, '')
      expect(
        addrs[0].addr_info.filter((a: any) => a.family === 'inet').map((a: any) => `${a.local}/${a.prefixlen}`),
      ).toEqual([`${vtepAddr}/32`])
      const cniAddrs = await ipJson(node.netns, ['addr', 'show', 'dev', 'cni0'])
      expect(cniAddrs[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toContain(
        node.podCIDR.replace(/\.0\/24$/, '.1/24'),
      )

      const routes = await ipJson(node.netns, ['route', 'show', 'dev', 'flannel.1'])
      const neigh = await ipJson(node.netns, ['neigh', 'show', 'dev', 'flannel.1'])
      const fdb = JSON.parse((await nsExec(node.netns, ['bridge', '-j', 'fdb', 'show', 'dev', 'flannel.1'])).stdout)
      for (const peer of nodes.filter((n) => n.name !== node.name)) {
        const peerVtep = peer.podCIDR.replace(/\/\d+$/, '')
        const r = routes.find((x: any) => x.dst === peer.podCIDR)
        expect(r, `route to ${peer.podCIDR} on ${node.name}`).toBeDefined()
        expect(r.gateway).toBe(peerVtep)
        expect(r.flags).toContain('onlink')
        const n = neigh.find((x: any) => x.dst === peerVtep)
        expect(n?.lladdr).toBe(peer.vtepMAC)
        expect(n?.state).toEqual(['PERMANENT'])
        const f = fdb.find((x: any) => x.mac === peer.vtepMAC)
        expect(f?.dst).toBe(peer.ip)
        expect(f?.flags ?? []).toContain('self')
        expect(f?.state).toBe('permanent')
      }
    }
  })

  it('agrees with the kernel: a remote pod is reached via flannel.1 and the peer VTEP', async () => {
    const {nodes, pods} = lab.get()
    const src = pods.find((p) => p.node === nodes[0]!.name)!
    for (const dst of pods.filter((p) => p.node !== src.node)) {
      const peer = nodes.find((n) => n.name === dst.node)!
      const [rt] = await ipJson(nodes[0]!.netns, ['route', 'get', dst.ip, 'from', src.ip, 'iif', 'cni0'])
      expect(rt.dev).toBe('flannel.1')
      expect(rt.gateway).toBe(peer.podCIDR.replace(/\/\d+$/, ''))
    }
  })

  it('writes the node files a real flannel node has', async () => {
    const {nodes, stateDir, inventory} = lab.get()
    expect(existsSync(inventory)).toBe(true)
    const env = await import('node:fs/promises').then((fs) =>
      fs.readFile(`${stateDir}/nodes/${nodes[1]!.name}/run/flannel/subnet.env`, 'utf8'),
    )
    expect(env).toContain('FLANNEL_NETWORK=172.20.0.0/16')
    expect(env).toContain(`FLANNEL_SUBNET=${nodes[1]!.podCIDR.replace(/\.0\/24$/, '.1/24')}`)
    expect(env).toContain('FLANNEL_MTU=1450')
    const facts = JSON.parse(
      await import('node:fs/promises').then((fs) =>
        fs.readFile(`${stateDir}/nodes/${nodes[1]!.name}/node.json`, 'utf8'),
      ),
    )
    expect(JSON.parse(facts.annotations['flannel.alpha.coreos.com/backend-data'])).toEqual({
      VNI: 1,
      VtepMAC: nodes[1]!.vtepMAC,
    })
    expect(facts.annotations['flannel.alpha.coreos.com/public-ip']).toBe(nodes[1]!.ip)
  })

  it('lab status reports every pair reachable and exits 0', async () => {
    const r = await netctlJson(['lab', 'status', '--name', lab.get().name, '--all-pairs'])
    expect(r.code).toBe(0)
    const validate = validatorFor('lab-status')
    expect(validate(r.json), JSON.stringify(validate.errors)).toBe(true)
    expect(r.json.reachability.pairs).toBe(30)
    expect(r.json.reachability.ok).toBe(30)
  })

  it('refuses a second lab up with the same name, changing nothing', async () => {
    const r = await netctl(['lab', 'up', '--name', lab.get().name])
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/already exists/)
    expect(await ping(lab.get().pods[0]!.netns, lab.get().pods.at(-1)!.ip)).toBe(true)
  })
})

describeLab('lab: flannel host-gw', () => {
  describe('flat', () => {
    const lab = useLab('flh', ['--nodes', '3', '--backend', 'flannel-host-gw'])

    it('routes each peer podCIDR via the peer node IP on eth0, and pods reach each other', async () => {
      const {nodes, pods, warnings} = lab.get()
      expect(warnings).toEqual([])
      for (const node of nodes) {
        const routes = await ipJson(node.netns, ['route', 'show'])
        expect(routes.find((r: any) => r.dev === 'flannel.1')).toBeUndefined()
        for (const peer of nodes.filter((n) => n.name !== node.name)) {
          const r = routes.find((x: any) => x.dst === peer.podCIDR)
          expect(r?.gateway).toBe(peer.ip)
          expect(r?.dev).toBe('eth0')
        }
      }
      await expectAllPodsReach(pods)
    })
  })

  describe('routed', () => {
    const lab = useLab('flhr', ['--nodes', '4', '--backend', 'flannel-host-gw', '--topology', 'routed'])

    it('says the kernel refused the cross-subnet routes, and those pods really cannot reach each other', async () => {
      const {nodes, pods, warnings} = lab.get()
      expect(warnings.some((w) => /L2-adjacent/.test(w))).toBe(true)
      expect(warnings.some((w) => /refused by the kernel: .*Nexthop has invalid gateway/.test(w))).toBe(true)
      const a = nodes[0]!
      const far = nodes.find((n) => n.subnet !== a.subnet)!
      const near = nodes.find((n) => n.subnet === a.subnet && n.name !== a.name)!
      const podA = pods.find((p) => p.node === a.name)!
      expect(await ping(podA.netns, pods.find((p) => p.node === far.name)!.ip)).toBe(false)
      expect(await ping(podA.netns, pods.find((p) => p.node === near.name)!.ip)).toBe(true)
      const status = await netctlJson(['lab', 'status', '--name', lab.get().name])
      expect(status.code).toBe(1)
      expect(status.json.reachability.ok).toBeLessThan(status.json.reachability.pairs)
    })
  })
})

describeLab('lab: flannel vxlan, routed', () => {
  const lab = useLab('flvr', ['--nodes', '4', '--backend', 'flannel-vxlan', '--topology', 'routed'])

  it('delivers across the router: vxlan only needs the underlay to route', async () => {
    const {nodes, pods, warnings} = lab.get()
    expect(warnings).toEqual([])
    expect(new Set(nodes.map((n) => n.subnet)).size).toBe(2)
    await expectAllPodsReach(pods)
    const a = nodes[0]!
    const far = nodes.find((n) => n.subnet !== a.subnet)!
    const [rt] = await ipJson(a.netns, ['route', 'get', far.ip])
    expect(rt.gateway).toMatch(/\.1$/) // the underlay itself goes through the router
  })
})

describeLab('lab: lifecycle', () => {
  it('runs two labs side by side and removes one without touching the other, leaving nothing behind', async () => {
    const a = uniqueLabName('lca')
    const b = uniqueLabName('lcb')
    try {
      const ra = await netctlJson(['lab', 'up', '--name', a, '--nodes', '2', '--pods-per-node', '1'])
      const rb = await netctlJson(['lab', 'up', '--name', b, '--nodes', '2', '--pods-per-node', '1'])
      expect(ra.code).toBe(0)
      expect(rb.code).toBe(0)
      // the same addresses in both labs: they are isolated from each other
      expect(ra.json.pods.map((p: any) => p.ip)).toEqual(rb.json.pods.map((p: any) => p.ip))
      const list = await netctlJson(['lab', 'list'])
      expect(validatorFor('lab-list')(list.json)).toBe(true)
      expect(list.json.labs.map((l: any) => l.name)).toEqual(expect.arrayContaining([a, b]))

      const down = await netctlJson(['lab', 'down', '--name', a])
      expect(down.code).toBe(0)
      expect(validatorFor('lab-down')(down.json)).toBe(true)
      expect(down.json.namespaces.length).toBe(1 + 2 + 2)
      const left = (await import('../../src/lab/netns-setup.js').then((m) => m.listNetns())).filter((n) =>
        n.startsWith(`${a}.`),
      )
      expect(left).toEqual([])
      expect(existsSync(ra.json.stateDir)).toBe(false)
      expect(await ping(rb.json.pods[0].netns, rb.json.pods[1].ip)).toBe(true)
      const again = await netctl(['lab', 'down', '--name', a])
      expect(again.code).toBe(0)
      expect(again.stdout).toMatch(/nothing to remove/)
    } finally {
      await netctl(['lab', 'down', '--name', a])
      await netctl(['lab', 'down', '--name', b])
    }
  })

  it('cleans up after a half-failed up: lab down removes namespaces made before the failure', async () => {
    const name = uniqueLabName('lch')
    const {addNetns} = await import('../../src/lab/netns-setup.js')
    try {
      // what a crash after the first namespaces leaves: namespaces, no record
      await addNetns(`${name}.fabric`)
      await addNetns(`${name}.node1`)
      const list = await netctlJson(['lab', 'list'])
      expect(list.json.labs.find((l: any) => l.name === name)?.status).toMatch(/orphaned/)
      const up = await netctl(['lab', 'up', '--name', name])
      expect(up.code).toBe(2)
      expect(up.stderr).toMatch(/already exists/)
      const down = await netctlJson(['lab', 'down', '--name', name])
      expect(down.json.namespaces.sort()).toEqual([`${name}.fabric`, `${name}.node1`])
    } finally {
      await netctl(['lab', 'down', '--name', name])
    }
  })

  it('explains a usage error in one line with exit 2', async () => {
    const r = await netctl(['lab', 'up', '--nodes', '1'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^netctl: --nodes: .*2/)
    const s = await netctl(['lab', 'status', '--name', 'no-such-lab-here'])
    expect(s.code).toBe(2)
    const j = await netctlJson(['lab', 'up', '--nodes', '1'])
    expect(j.code).toBe(2)
    expect(validatorFor('error')(j.json)).toBe(true)
    expect(j.json.error.message).toMatch(/--nodes/)
    expect(s.stderr).toMatch(/no lab named 'no-such-lab-here'/)
  })
})
