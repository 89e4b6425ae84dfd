/**
 * `netctl trace --probe` on real labs, as a user runs it: a routed lab whose
 * router drops the encapsulation (plain iptables in the router's namespace),
 * which ping confirms and the walk alone cannot see; a healthy pair; and a
 * fault of the kernel-oracle suite (node1's FDB entry for node2 deleted),
 * where the probe must agree with the walk's dropping hop.
 */
import {describe, expect, it} from 'vitest'

import type {Trace} from '../../src/model/trace.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {snapshotFixturePath} from '../helpers/fixtures.js'
import {describeLab, nsExec, ping, useLab} from '../helpers/lab.js'

const SRC = 'pod-node1-1'
const DST = 'pod-node2-1'

/** Run `fn` while the router namespace drops UDP `port` in FORWARD; the rule is removed after, also on failure. */
async function withRouterDrop(router: string, port: number, fn: () => Promise<void>): Promise<void> {
  const rule = ['FORWARD', '-p', 'udp', '--dport', String(port), '-j', 'DROP']
  const r = await nsExec(router, ['iptables', '-I', ...rule])
  expect(r.code, r.stderr).toBe(0)
  try {
    await fn()
  } finally {
    await nsExec(router, ['iptables', '-D', ...rule])
  }
}

function underlayDropCase(prefix: string, backend: string, port: number): void {
  describeLab(`trace --probe, ${backend} across a router that drops UDP ${port}`, () => {
    const lab = useLab(prefix, ['--nodes', '2', '--pods-per-node', '1', '--backend', backend, '--topology', 'routed'])

    it('confirms a healthy pair', async () => {
      const r = await netctlJson<Trace>(['trace', SRC, DST, '--lab', lab.get().name, '--probe', '--json'])
      expect(r.code, r.stderr).toBe(0)
      expect(r.json.disposition).toBe('DELIVERED')
      expect(r.json.probe).toMatchObject({verdict: 'confirmed', sent: 3, answered: 3, firstMissing: null})
    })

    it('says UNDERLAY_DROP naming both nodes and the port, where ping fails and the walk alone says DELIVERED', async () => {
      const {name, nodes, pods} = lab.get()
      const [n1, n2] = [nodes.find((n) => n.name === 'node1')!, nodes.find((n) => n.name === 'node2')!]
      await withRouterDrop(`${name}.router`, port, async () => {
        expect(await ping(pods.find((p) => p.name === SRC)!.netns, pods.find((p) => p.name === DST)!.ip)).toBe(false)
        const walk = await netctlJson<Trace>(['trace', SRC, DST, '--lab', name, '--json'])
        expect(walk.json.disposition).toBe('DELIVERED')

        const r = await netctlJson<Trace>(['trace', SRC, DST, '--lab', name, '--probe', '--json'])
        expect(r.code).toBe(1)
        expect(r.json.disposition).toBe('UNDERLAY_DROP')
        expect(r.json.probe).toMatchObject({verdict: 'underlay-drop', answered: 0, lastSeen: {node: 'node1', direction: 'tx'}, firstMissing: {node: 'node2', direction: 'rx'}})
        const f = r.json.findings.find((x) => x.code === 'UNDERLAY_DROP')!
        expect(f.subject).toBe(`node1 (${n1.ip}) → node2 (${n2.ip})`)
        expect(f.message).toContain(`UDP ${port}`)

        const text = await netctl(['trace', SRC, DST, '--lab', name, '--probe'])
        expect(text.code).toBe(1)
        expect(text.stdout).toMatch(/^UNDERLAY_DROP/)
        expect(text.stdout).toContain('Probe  UNDERLAY_DROP')
      })
    })
  })
}

underlayDropCase('pbfv', 'flannel-vxlan', 8472)
underlayDropCase('pbcv', 'calico-vxlan', 4789)
underlayDropCase('pbfu', 'flannel-udp', 8285)

describeLab('trace --probe on a fault of the kernel-oracle suite: an FDB entry deleted', () => {
  const lab = useLab('pbfdb', ['--nodes', '2', '--pods-per-node', '1'])

  it('confirms the walk, the packet last seen on the walk’s dropping hop', async () => {
    const {name, nodes} = lab.get()
    const node1 = `${name}.node1`
    const n2 = nodes.find((n) => n.name === 'node2')!
    const fdb = await nsExec(node1, ['bridge', 'fdb', 'show', 'dev', 'flannel.1'])
    const line = fdb.stdout.split('\n').find((l) => l.includes(`dst ${n2.ip}`))!
    const mac = line.split(' ')[0]!
    await nsExec(node1, ['bridge', 'fdb', 'del', mac, 'dev', 'flannel.1', 'dst', n2.ip, 'self'])
    try {
      const r = await netctlJson<Trace>(['trace', SRC, DST, '--lab', name, '--probe', '--json'])
      expect(r.code).toBe(1)
      expect(r.json.disposition).toBe('FDB_MISS')
      const drop = r.json.hops.at(-1)!
      expect(r.json.probe).toMatchObject({verdict: 'confirmed', answered: 0})
      expect(r.json.probe!.lastSeen?.node).toBe(drop.node)
      expect(r.json.probe!.firstMissing).toEqual({node: drop.node, interface: drop.out, direction: 'tx'})
      expect(r.json.findings.map((f) => f.code)).not.toContain('MODEL_DISAGREES')
    } finally {
      await nsExec(node1, ['bridge', 'fdb', 'append', mac, 'dev', 'flannel.1', 'dst', n2.ip, 'self', 'permanent'])
    }
  })
})

describe('trace --probe on a saved snapshot', () => {
  it('is refused: a usage error, exit 2, one line', async () => {
    const r = await netctl(['trace', 'pod-node1-1', 'pod-node2-1', '--snapshot', snapshotFixturePath('flannel-vxlan-lab'), '--probe'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--probe sends a real packet')
  })
})
