import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {expect, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {validatorFor} from '../../src/util/schema.js'
import {BIN, netctl, netctlJson} from '../helpers/cli.js'
import {describeLab, ipJson, nsExec, useLab} from '../helpers/lab.js'
import {expectAllPodsReachable, expectReported, kernelOfLab, setBackend} from './lab-helpers.js'

describeLab('backend set on a flat flannel lab: vxlan -> host-gw -> udp -> vxlan', () => {
  const lab = useLab('bk', ['--nodes', '3', '--pods-per-node', '1'])
  const vtepMACs: Record<string, string> = {}

  it('backend get: flannel-vxlan, no drift, the state listed as the kernel holds it', async () => {
    await expectReported(lab.get(), 'flannel-vxlan')
    const get = await netctlJson(['backend', 'get', '--lab', lab.get().name])
    for (const node of lab.get().nodes) {
      const [link] = await ipJson(node.netns, ['-d', 'link', 'show', 'flannel.1'])
      vtepMACs[node.name] = link.address
      const mine = get.json.nodes.find((n: {node: string}) => n.node === node.name)
      const fdb = JSON.parse(
        (await nsExec(node.netns, ['bridge', '-j', 'fdb', 'show', 'dev', 'flannel.1'])).stdout,
      ) as Array<{mac: string; dst: string}>
      expect([...mine.state.fdb].sort()).toEqual(
        fdb.map((f) => `${f.mac} dev flannel.1 dst ${f.dst} self permanent`).sort(),
      )
      const routes = (
        await ipJson<Array<{dst: string; gateway: string}>>(node.netns, ['route', 'show', 'dev', 'flannel.1'])
      ).map((r) => `${r.dst} via ${r.gateway} dev flannel.1 onlink`)
      expect([...mine.state.routes].sort()).toEqual(routes.sort())
    }
  })

  it('plan --json validates against its schema and removes exactly what flannel.1 carries', async () => {
    const r = await netctlJson(['backend', 'plan', 'flannel-host-gw', '--lab', lab.get().name])
    expect(r.code, r.stderr).toBe(0)
    const validate = validatorFor('backend-plan')
    expect(validate(r.json), JSON.stringify(validate.errors?.slice(0, 3))).toBe(true)
    expect(r.json.preflight.ok).toBe(true)
    for (const node of lab.get().nodes) {
      const n = r.json.nodes.find((x: {node: string}) => x.node === node.name)
      const neigh = await ipJson<Array<{dst: string; lladdr: string}>>(node.netns, [
        'neigh',
        'show',
        'dev',
        'flannel.1',
      ])
      expect([...n.diff.neighbours.remove].sort()).toEqual(
        neigh.map((x) => `${x.dst} dev flannel.1 lladdr ${x.lladdr} PERMANENT`).sort(),
      )
      const peers = lab.get().nodes.filter((p) => p !== node)
      expect([...n.diff.routes.add].sort()).toEqual(peers.map((p) => `${p.podCIDR} via ${p.ip} dev eth0`).sort())
    }
  })

  it('set without --yes and without a terminal: exit 2, one line, nothing changed', async () => {
    const before = await kernelOfLab(lab.get())
    const r = await netctl(['backend', 'set', 'flannel-host-gw', '--lab', lab.get().name])
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/--yes/)
    expect(await kernelOfLab(lab.get())).toEqual(before)
  })

  it('vxlan -> host-gw: applied and verified; every pod pair reachable; get and lab status say host-gw', async () => {
    const r = await setBackend(lab.get(), 'flannel-host-gw')
    expect(r.code, r.json.message).toBe(0)
    expect(r.json.outcome).toBe('applied')
    // verified with netctl trace over the re-collected state too: 3 nodes, 6 ordered pairs, all delivered both ways
    expect(r.json.verify.traced).toEqual({pairs: 6, delivered: 6, failed: []})
    for (const node of lab.get().nodes) {
      expect(await ipJson(node.netns, ['link', 'show', 'type', 'vxlan'])).toEqual([])
      for (const peer of lab.get().nodes.filter((p) => p !== node)) {
        const [got] = await ipJson(node.netns, ['route', 'get', lab.get().pods.find((p) => p.node === peer.name)!.ip])
        expect([got.gateway, got.dev]).toEqual([peer.ip, 'eth0'])
      }
    }
    await expectAllPodsReachable(lab.get())
    await expectReported(lab.get(), 'flannel-host-gw')
  })

  it('a node whose ip -batch fails mid-apply: every node back to its state before, pods reachable, exit 4', async () => {
    const node2 = lab.get().nodes[1]!
    // a vxlan device holding VNI 1 on port 8472 already: the kernel refuses node2's flannel.1
    expect(
      (
        await nsExec(node2.netns, [
          'ip',
          'link',
          'add',
          'vx-block',
          'type',
          'vxlan',
          'id',
          '1',
          'local',
          node2.ip,
          'dev',
          'eth0',
          'dstport',
          '8472',
          'nolearning',
        ])
      ).code,
    ).toBe(0)
    try {
      const before = await kernelOfLab(lab.get())
      // the what-if sees vx-block take node2's vxlan packets: refused before anything is touched
      const predicted = await setBackend(lab.get(), 'flannel-vxlan')
      expect(predicted.code).toBe(4)
      expect(predicted.json.outcome).toBe('refused')
      expect(predicted.json.message, predicted.json.message).toMatch(/^refused by the what-if: .*pod-node2/)
      expect(predicted.json.apply).toBeUndefined()
      expect(await kernelOfLab(lab.get())).toEqual(before)
      // forced, the kernel refuses node2's flannel.1 (not a predicted refusal): every node rolled back
      const r = await setBackend(lab.get(), 'flannel-vxlan', ['--force'])
      expect(r.code).toBe(4)
      expect(r.json.outcome).toBe('rolled-back')
      expect(r.json.message).toMatch(/VXLAN device with the specified VNI already exists/)
      expect(r.json.apply.find((a: {node: string}) => a.node === node2.name).ok).toBe(false)
      expect(r.json.rollback.restored).toBe(true)
      expect(await kernelOfLab(lab.get())).toEqual(before)
      await expectAllPodsReachable(lab.get())
      await expectReported(lab.get(), 'flannel-host-gw')
    } finally {
      await nsExec(node2.netns, ['ip', 'link', 'del', 'vx-block'])
    }
  })

  it('host-gw -> udp: flannel0 and the forwarders carry every pod pair', async () => {
    const r = await setBackend(lab.get(), 'flannel-udp')
    expect(r.code, r.json.message).toBe(0)
    for (const node of lab.get().nodes) {
      const [tun] = await ipJson(node.netns, ['-d', 'link', 'show', 'flannel0'])
      expect(tun.linkinfo.info_kind).toBe('tun')
      expect(await ipJson(node.netns, ['route', 'show', 'via', lab.get().nodes.find((p) => p !== node)!.ip])).toEqual(
        [],
      )
    }
    await expectAllPodsReachable(lab.get())
    await expectReported(lab.get(), 'flannel-udp')
  })

  it("udp -> vxlan: flannel.1 again with each node's VTEP MAC from before, the udp daemons gone", async () => {
    const r = await setBackend(lab.get(), 'flannel-vxlan')
    expect(r.code, r.json.message).toBe(0)
    for (const node of lab.get().nodes) {
      const [link] = await ipJson(node.netns, ['-d', 'link', 'show', 'flannel.1'])
      expect(link.address).toBe(vtepMACs[node.name])
      expect((await nsExec(node.netns, ['ip', 'link', 'show', 'flannel0'])).code).not.toBe(0)
    }
    await expectAllPodsReachable(lab.get())
    await expectReported(lab.get(), 'flannel-vxlan')
  })

  it('setting the current backend changes nothing: exit 0, "already"', async () => {
    const before = await kernelOfLab(lab.get())
    const r = await netctl(['backend', 'set', 'flannel-vxlan', '--lab', lab.get().name, '--yes'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/already flannel-vxlan/)
    expect(await kernelOfLab(lab.get())).toEqual(before)
  })

  it('SIGTERM during a switch rolls every node back (exit 4)', async () => {
    const before = await kernelOfLab(lab.get())
    // as test/helpers/cli.ts runs the CLI: without vitest's NODE_ENV
    const {NODE_ENV: _test, ...env} = process.env
    const child = spawn(
      process.execPath,
      [BIN, 'backend', 'set', 'flannel-host-gw', '--lab', lab.get().name, '--yes'],
      {env: {...env, NO_COLOR: '1'}},
    )
    let stderr = ''
    let sent = false
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString()
      // the first node step: the switch has begun, and verification (seconds) is still ahead
      if (!sent && /node\d: add:/.test(stderr)) {
        sent = true
        child.kill('SIGTERM')
      }
    })
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    expect(sent).toBe(true)
    expect(code, stderr).toBe(4)
    expect(stderr).toMatch(/rolled back: .*interrupted by SIGTERM/)
    expect(await kernelOfLab(lab.get())).toEqual(before)
    await expectAllPodsReachable(lab.get())
    await expectReported(lab.get(), 'flannel-vxlan')
  })

  it('through a hand-written inventory of the same nodes: kernel-only switches apply, daemons are refused, the file records the backend', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bk-inv-'))
    try {
      const file = path.join(dir, 'cluster.yaml')
      const inv = parse(readFileSync(lab.get().inventory, 'utf8'))
      inv.cluster.source = 'file'
      for (const n of inv.nodes) delete n.annotations['flannel.alpha.coreos.com/backend-data']
      writeFileSync(file, `# my cluster\n${stringify(inv)}`)
      // a node that cannot be reached: no switch at all
      const broken = path.join(dir, 'broken.yaml')
      const gone = structuredClone(inv)
      gone.nodes[2].access.netns = `${lab.get().name}.no-such-node`
      writeFileSync(broken, stringify(gone))
      const before = await kernelOfLab(lab.get())
      const refused = await netctlJson(['backend', 'set', 'flannel-host-gw', '--inventory', broken, '--yes'])
      expect(refused.code).toBe(4)
      expect(
        refused.json.plan.preflight.findings.map((f: {code: string; node?: string}) => `${f.code} ${f.node}`),
      ).toEqual([`NODE_UNREACHABLE ${gone.nodes[2].name}`])
      expect(await kernelOfLab(lab.get())).toEqual(before)

      const udp = await netctlJson(['backend', 'set', 'flannel-udp', '--inventory', file, '--yes'])
      expect(udp.code).toBe(4)
      expect(udp.json.plan.preflight.findings.map((f: {code: string}) => f.code)).toEqual(['DAEMON_UNMANAGED'])

      const r = await netctlJson(['backend', 'set', 'flannel-host-gw', '--inventory', file, '--yes'])
      expect(r.code, r.json.message).toBe(0)
      // pinged for real from the pod namespaces the probe entered, through each node's transport
      expect(r.json.verify.reachability.pairs).toBeGreaterThan(0)
      expect(r.json.verify.reachability.ok).toBe(r.json.verify.reachability.pairs)
      await expectAllPodsReachable(lab.get())
      const written = readFileSync(file, 'utf8')
      expect(written.startsWith('# my cluster')).toBe(true)
      expect(parse(written).cluster.backend).toBe('flannel-host-gw')
      const get = await netctlJson(['backend', 'get', '--inventory', file])
      expect([get.code, get.json.drift]).toEqual([0, []])

      // back to vxlan: the VTEP MACs come from what the file kept, not from a device that is gone
      const back = await netctlJson(['backend', 'set', 'flannel-vxlan', '--inventory', file, '--yes'])
      expect(back.code, back.json.message).toBe(0)
      for (const node of lab.get().nodes) {
        const [link] = await ipJson(node.netns, ['-d', 'link', 'show', 'flannel.1'])
        expect(link.address).toBe(vtepMACs[node.name])
      }
      await expectAllPodsReachable(lab.get())
      await expectReported(lab.get(), 'flannel-vxlan')
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
