/**
 * The what-if against the real switch for the other switches a lab can make:
 * flannel vxlan ↔ udp, and Calico BGP ↔ VXLAN. One
 * lab per family, switched back and forth; at every step the matrix the plan
 * predicts equals the matrix of a collect after the real `backend set`, pair by
 * pair, and ping agrees (test/backend/what-if-lab.test.ts does vxlan ↔ host-gw).
 */
import {expect, it} from 'vitest'

import {describeLab, useLab} from '../helpers/lab.js'
import {expectWhatIfIsTheSwitch, nodePodPairs, pingDF} from './lab-helpers.js'

const LONG = 240_000

describeLab('what-if = the real switch: flannel vxlan ↔ udp', () => {
  const lab = useLab('wfu', ['--backend', 'flannel-vxlan', '--nodes', '3', '--pods-per-node', '1'])

  it(
    'vxlan → udp → vxlan: the predicted matrix is the real one at each step, nothing broken',
    async () => {
      const there = await expectWhatIfIsTheSwitch(lab.get(), 'flannel-udp')
      // pods at 1450 (vxlan's) fit flannel0's 1472: no full-size packet dies
      expect(there.predicted.mtu.broken).toEqual([])
      expect(there.set.json.forced).toBeUndefined()
      await expectWhatIfIsTheSwitch(lab.get(), 'flannel-vxlan')
    },
    LONG,
  )
})

describeLab('what-if = the real switch: Calico BGP ↔ VXLAN', () => {
  const lab = useLab('wfc', ['--backend', 'calico-bgp', '--nodes', '3', '--pods-per-node', '1'])

  it(
    'bgp → vxlan (forced: pods keep 1500, vxlan.calico takes 1450): the matrix is the predicted one, full-size pings die exactly where predicted; and back to bgp',
    async () => {
      const l = lab.get()
      // refused without --force (test/backend/lab-calico.test.ts shows it): forced here
      const {predicted, set} = await expectWhatIfIsTheSwitch(l, 'calico-vxlan', ['--force'])
      expect(set.json.forced).toBe(true)
      const want = predicted.mtu.broken.map((b) => `${b.src} -> ${b.dst}`).sort()
      expect(want.length).toBe(6)
      const real: string[] = []
      for (const [a, b] of nodePodPairs(l))
        if (!(await pingDF(a.netns, b.ip, 1500))) real.push(`${a.namespace}/${a.name} -> ${b.namespace}/${b.name}`)
      expect(real.sort()).toEqual(want)
      await expectWhatIfIsTheSwitch(l, 'calico-bgp')
    },
    LONG,
  )
})
