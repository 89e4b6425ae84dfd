import {expect, it} from 'vitest'

import {validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {describeLab, ipJson, useLab} from '../helpers/lab.js'
import {expectAllPodsReachable, kernelOfLab, setBackend} from './lab-helpers.js'

describeLab('backend set flannel-host-gw on the routed topology (3 nodes)', () => {
  const lab = useLab('bk', ['--nodes', '3', '--pods-per-node', '1', '--topology', 'routed'])

  /** Node pairs on different subnets: each side's `ip route get` to the other names the router. */
  async function acrossTheRouter(): Promise<string[]> {
    const pairs: string[] = []
    const nodes = lab.get().nodes
    for (const [i, a] of nodes.entries()) {
      for (const b of nodes.slice(i + 1)) {
        const [ab] = await ipJson(a.netns, ['route', 'get', b.ip])
        const [ba] = await ipJson(b.netns, ['route', 'get', a.ip])
        if (ab.gateway !== undefined || ba.gateway !== undefined) pairs.push(`${a.name}-${b.name}`)
      }
    }
    return pairs
  }

  it('is refused: exit 4, HOSTGW_NOT_L2_ADJACENT listing the pairs the kernel routes via the router; nothing changed', async () => {
    const pairs = await acrossTheRouter()
    expect(pairs.length).toBeGreaterThan(0)
    const before = await kernelOfLab(lab.get())
    const r = await setBackend(lab.get(), 'flannel-host-gw')
    expect(r.code).toBe(4)
    expect(r.json.outcome).toBe('refused')
    const finding = r.json.plan.preflight.findings.find((f: {code: string}) => f.code === 'HOSTGW_NOT_L2_ADJACENT')
    expect(finding.severity).toBe('error')
    expect(r.json.plan.preflight.notAdjacent).toEqual(pairs)
    for (const p of pairs) expect(finding.message).toContain(p)
    expect(r.json.apply).toBeUndefined()
    expect(await kernelOfLab(lab.get())).toEqual(before)
    await expectAllPodsReachable(lab.get())
  })

  it('as text: one line on stderr names the code and the pairs; plan exits 4 too', async () => {
    const pairs = await acrossTheRouter()
    const r = await netctl(['backend', 'set', 'flannel-host-gw', '--lab', lab.get().name, '--yes'])
    expect(r.code).toBe(4)
    const last = r.stderr.trim().split('\n').at(-1)!
    expect(last).toMatch(/^netctl: refused by preflight \(HOSTGW_NOT_L2_ADJACENT\)/)
    for (const p of pairs) expect(last).toContain(p)
    const plan = await netctlJson(['backend', 'plan', 'flannel-host-gw', '--lab', lab.get().name])
    expect(plan.code).toBe(4)
    expect(validatorFor('backend-plan')(plan.json)).toBe(true)
    // the plan is still shown: what host-gw would write, and what the preflight found
    expect(plan.json.nodes.every((n: {changes: number}) => n.changes > 0)).toBe(true)
  })
})
