/**
 * The what-if against the real switch: on a flat flannel lab, the matrix the
 * plan predicts (applied to a collect, no node touched) equals, pair by pair,
 * the matrix of a collect after the real `backend set`, and both agree with
 * ping; there and back.
 */
import {expect, it} from 'vitest'

import {reachabilityMatrix} from '../../src/analyze/matrix.js'
import {clusterFacts} from '../../src/backend/plan/facts.js'
import {planSwitch} from '../../src/backend/plan/plan.js'
import {applyPlan} from '../../src/backend/plan/what-if.js'
import {validatorFor} from '../../src/util/schema.js'
import {collectLab} from '../analyze/trace/oracle.js'
import {netctlJson} from '../helpers/cli.js'
import {describeLab, nsExec, useLab} from '../helpers/lab.js'
import {expectWhatIfIsTheSwitch} from './lab-helpers.js'

const LONG = 240_000

describeLab('backend plan --what-if against the real switch (flat flannel lab)', () => {
  const lab = useLab('mxwif', ['--backend', 'flannel-vxlan', '--nodes', '3', '--pods-per-node', '1'])

  it(
    'plan flannel-host-gw --what-if: the JSON validates, no pair changes on a flat underlay',
    async () => {
      const r = await netctlJson(['backend', 'plan', 'flannel-host-gw', '--lab', lab.get().name, '--what-if'])
      expect(r.code, r.stderr).toBe(0)
      const validate = validatorFor('backend-plan')
      expect(validate(r.json), JSON.stringify(validate.errors?.slice(0, 3))).toBe(true)
      expect(r.json.whatIf).toMatchObject({
        refused: [],
        matrix: {changed: [], before: {counts: {pairs: 6, delivered: 6}}, after: {counts: {pairs: 6, delivered: 6}}},
      })
    },
    LONG,
  )

  it(
    'vxlan → host-gw: the predicted matrix is the real one, pair by pair',
    async () => {
      await expectWhatIfIsTheSwitch(lab.get(), 'flannel-host-gw')
    },
    LONG,
  )

  it(
    'host-gw → vxlan: the same',
    async () => {
      await expectWhatIfIsTheSwitch(lab.get(), 'flannel-vxlan')
    },
    LONG,
  )
})

describeLab('backend plan --what-if on a routed flannel vxlan lab: host-gw', () => {
  const lab = useLab('mxwir', [
    '--backend',
    'flannel-vxlan',
    '--nodes',
    '3',
    '--pods-per-node',
    '1',
    '--topology',
    'routed',
  ])

  it(
    'predicts exactly the host-gw routes the kernel refuses, and the pairs they break',
    async () => {
      const l = lab.get()
      const before = await collectLab(l.name)
      const plan = planSwitch(before, clusterFacts(before), 'flannel-vxlan', 'flannel-host-gw')
      const predicted = applyPlan(before, plan)
      // every host-gw route of the plan offered to the kernel, in a table of its own (the vxlan routes stay in main)
      const refusedByKernel: string[] = []
      for (const n of plan.nodes) {
        const netns = l.nodes.find((x) => x.name === n.node)!.netns
        for (const r of (n.diff?.kinds.routes.add ?? []) as Array<{dst: string; gateway?: string; dev?: string}>) {
          const add = await nsExec(netns, [
            'ip',
            'route',
            'add',
            r.dst,
            'via',
            r.gateway!,
            'dev',
            r.dev!,
            'table',
            '4242',
          ])
          if (add.code !== 0) refusedByKernel.push(`${n.node}: ip route add ${r.dst} via ${r.gateway} dev ${r.dev}`)
        }
        await nsExec(netns, ['ip', 'route', 'flush', 'table', '4242'])
      }
      expect(refusedByKernel.length).toBeGreaterThan(0)
      expect(predicted.refused.map((r) => `${r.node}: ${r.route}`).sort()).toEqual(refusedByKernel.sort())

      const r = await netctlJson(['backend', 'plan', 'flannel-host-gw', '--lab', l.name, '--what-if'])
      expect(r.code).toBe(4) // preflight refuses (HOSTGW_NOT_L2_ADJACENT): the what-if says which pairs and why
      const changed = (
        r.json.whatIf.matrix.changed as Array<{src: string; dst: string; after: {disposition: string}}>
      ).map((c) => `${c.src} → ${c.dst}: ${c.after.disposition}`)
      expect(changed.sort()).toEqual(
        reachabilityMatrix(predicted.snapshot)
          .cells.filter((c) => c.disposition !== 'DELIVERED')
          .map((c) => `${c.src} → ${c.dst}: ${c.disposition}`)
          .sort(),
      )
      // the broken pairs are exactly those between the two subnets
      const subnetOf = (pod: string) =>
        l.nodes.find((n) => n.name === l.pods.find((p) => `${p.namespace}/${p.name}` === pod)!.node)!.subnet
      for (const c of r.json.whatIf.matrix.changed as Array<{src: string; dst: string}>)
        expect(subnetOf(c.src)).not.toBe(subnetOf(c.dst))
      expect(changed.length).toBe(4)
    },
    LONG,
  )
})
