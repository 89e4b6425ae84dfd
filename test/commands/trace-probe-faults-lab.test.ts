/**
 * `netctl trace --probe` on real labs, the second half (each file stays
 * within a few minutes): flannel udp across a router that drops UDP 8285, and
 * a fault of the kernel-oracle suite (node1's FDB entry for node2 deleted),
 * where the probe must agree with the walk's dropping hop.
 */
import {expect, it} from 'vitest'

import type {Trace} from '../../src/model/trace.js'
import {netctlJson} from '../helpers/cli.js'
import {describeLab, nsExec, useLab} from '../helpers/lab.js'
import {DST, SRC, underlayDropCase} from '../helpers/probe-lab.js'

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
