/**
 * `backend set` behind its what-if, on real labs: a predicted break refuses
 * the switch with nothing touched; --force applies it and the kernel then
 * refuses exactly what was predicted; an MTU the new overhead does not fit is
 * predicted pair by pair and a real full-size ping agrees.
 */
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {expect, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {netctl, netctlJson} from '../helpers/cli.js'
import {describeLab, type LabUp, nsExec, ping, useLab} from '../helpers/lab.js'
import {kernelOfLab, nodePodPairs, pingDF, setBackend} from './lab-helpers.js'

const LONG = 240_000
const podId = (p: LabUp['pods'][number]) => `${p.namespace}/${p.name}`

describeLab('backend set behind the what-if: host-gw on a routed flannel vxlan lab', () => {
  const lab = useLab('wfr', [
    '--backend',
    'flannel-vxlan',
    '--nodes',
    '3',
    '--pods-per-node',
    '1',
    '--topology',
    'routed',
  ])
  let predicted: {refused: Array<{node: string; op: string}>; broken: string[]} | undefined

  it(
    'is refused with exit 4, one line naming how many pairs break and why, the pairs in JSON; no node touched',
    async () => {
      const l = lab.get()
      const before = await kernelOfLab(l)
      const r = await setBackend(l, 'flannel-host-gw')
      expect(r.code, r.stderr).toBe(4)
      expect(r.json.outcome).toBe('refused')
      const w = r.json.plan.whatIf
      const broken = (w.matrix.changed as Array<{src: string; dst: string; after: {disposition: string}}>)
        .filter((c) => c.after.disposition !== 'DELIVERED')
        .map((c) => `${c.src} -> ${c.dst}`)
      // the pairs between the two subnets, both ways: node3 is behind the router
      expect(broken.length).toBe(4)
      expect(w.refused.length).toBe(4)
      expect(r.json.message).toContain('4 pod pairs would stop reaching each other')
      expect(r.json.message).toContain('Nexthop has invalid gateway')
      expect(r.json.message).toContain('--force')
      expect(r.json.apply).toBeUndefined()
      expect(await kernelOfLab(l)).toEqual(before)
      predicted = {refused: w.refused, broken}

      // as text: the same, as one line on stderr
      const t = await netctl(['backend', 'set', 'flannel-host-gw', '--lab', l.name, '--yes'])
      expect(t.code).toBe(4)
      const last = t.stderr.trim().split('\n').at(-1)!
      expect(last).toMatch(/^netctl: refused by preflight \(HOSTGW_NOT_L2_ADJACENT\).*4 pod pairs would stop.*--force/)
      expect(await kernelOfLab(l)).toEqual(before)

      // the same nodes through an inventory file: the same what-if, the same refusal
      const dir = mkdtempSync(path.join(tmpdir(), 'wf-inv-'))
      try {
        const file = path.join(dir, 'cluster.yaml')
        const inv = parse(readFileSync(l.inventory, 'utf8'))
        inv.cluster.source = 'file'
        writeFileSync(file, stringify(inv))
        const viaFile = await netctlJson(['backend', 'set', 'flannel-host-gw', '--inventory', file, '--yes'])
        expect(viaFile.code).toBe(4)
        expect(viaFile.json.message).toContain('4 pod pairs would stop reaching each other')
        expect(viaFile.json.plan.whatIf.refused.length).toBe(4)
        expect(await kernelOfLab(l)).toEqual(before)
      } finally {
        rmSync(dir, {recursive: true, force: true})
      }
    },
    LONG,
  )

  it(
    '--force applies it: the kernel refuses exactly the predicted routes, exactly the predicted pairs stop answering',
    async () => {
      const l = lab.get()
      expect(predicted).toBeDefined()
      const r = await setBackend(l, 'flannel-host-gw', ['--force'])
      expect(r.code, r.json.message).toBe(0)
      expect(r.json).toMatchObject({outcome: 'applied', forced: true})
      const refusedByKernel = (r.json.apply as Array<{node: string; refused?: Array<{line: string; error: string}>}>)
        .flatMap((a) => (a.refused ?? []).map((x) => `${a.node}: ${x.line}`))
        .sort()
      expect(refusedByKernel).toEqual(predicted!.refused.map((x) => `${x.node}: ${x.op}`).sort())
      for (const a of r.json.apply) for (const x of a.refused ?? []) expect(x.error).toMatch(/invalid gateway/i)
      // the kernel's own answer, pair by pair: a real ping fails exactly where the what-if said
      const failing: string[] = []
      for (const [a, b] of nodePodPairs(l))
        if (!(await ping(a.netns, b.ip, 1))) failing.push(`${podId(a)} -> ${podId(b)}`)
      expect(failing.sort()).toEqual([...predicted!.broken].sort())
      expect(r.json.verify.expected.length).toBeGreaterThan(0)

      // back to vxlan: nothing breaks, no --force needed
      const back = await setBackend(l, 'flannel-vxlan')
      expect(back.code, back.json.message).toBe(0)
      for (const [a, b] of nodePodPairs(l)) expect(await ping(a.netns, b.ip, 1), `${a.name} -> ${b.ip}`).toBe(true)
    },
    LONG,
  )
})

describeLab('backend set behind the what-if: MTU (host-gw on an underlay of 1450, pods at 1450, to vxlan)', () => {
  const lab = useLab('wfm', ['--backend', 'flannel-host-gw', '--nodes', '3', '--pods-per-node', '1'])
  const UNDERLAY = 1450

  it(
    'predicts the pairs whose full-size packets die, refuses without --force, and a real ping -M do agrees after the forced switch',
    async () => {
      const l = lab.get()
      // the underlay and the pods at 1450, as a cloud network would have them: plain ip link set mtu
      for (const n of l.nodes) {
        const links = (await nsExec(n.netns, ['ip', '-o', 'link', 'show']).then((x) => x.stdout.split('\n'))).flatMap(
          (line) => /^\d+: ([^:@]+)/.exec(line)?.[1] ?? [],
        )
        for (const dev of links.filter((d) => d === 'eth0' || d.startsWith('veth') || d === 'cni0'))
          expect((await nsExec(n.netns, ['ip', 'link', 'set', dev, 'mtu', String(UNDERLAY)])).code).toBe(0)
      }
      for (const p of l.pods)
        expect((await nsExec(p.netns, ['ip', 'link', 'set', 'eth0', 'mtu', String(UNDERLAY)])).code).toBe(0)
      for (const [a, b] of nodePodPairs(l))
        expect(await pingDF(a.netns, b.ip, UNDERLAY), `${a.name} -> ${b.ip}`).toBe(true)

      const before = await kernelOfLab(l)
      const r = await setBackend(l, 'flannel-vxlan')
      expect(r.code, r.stderr).toBe(4)
      expect(r.json.outcome).toBe('refused')
      expect(r.json.message).toMatch(
        /^refused by the what-if: full-size packets \(1450 bytes, DF\) would die on 6 pod pairs/,
      )
      const mtu = r.json.plan.whatIf.mtu
      expect(r.json.plan.whatIf.matrix.changed).toEqual([])
      for (const b of mtu.broken) expect(b).toMatchObject({size: UNDERLAY, mtu: UNDERLAY - 50})
      expect(mtu.findings.map((f: {code: string; subject: string}) => `${f.code} ${f.subject}`).sort()).toEqual(
        l.pods.map((p) => `MTU_MISMATCH eth0 in ${podId(p)}`).sort(),
      )
      for (const f of mtu.findings) expect(f.fix).toContain(`mtu ${UNDERLAY - 50}`)
      expect(await kernelOfLab(l)).toEqual(before)

      const forced = await setBackend(l, 'flannel-vxlan', ['--force'])
      expect(forced.code, forced.json.message).toBe(0)
      expect(forced.json).toMatchObject({outcome: 'applied', forced: true})
      const predicted = (mtu.broken as Array<{src: string; dst: string}>).map((b) => `${b.src} -> ${b.dst}`).sort()
      const real: string[] = []
      for (const [a, b] of nodePodPairs(l)) {
        // small packets still get through; full-size ones with DF die exactly where predicted
        expect(await ping(a.netns, b.ip, 1), `${a.name} -> ${b.ip}`).toBe(true)
        if (!(await pingDF(a.netns, b.ip, UNDERLAY))) real.push(`${podId(a)} -> ${podId(b)}`)
      }
      expect(real.sort()).toEqual(predicted)
      // and what still fits, fits: the tunnel's MTU
      for (const [a, b] of nodePodPairs(l)) expect(await pingDF(a.netns, b.ip, UNDERLAY - 50)).toBe(true)
    },
    LONG,
  )
})
