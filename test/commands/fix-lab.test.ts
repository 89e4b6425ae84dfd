import {expect, it} from 'vitest'

import {run} from '../../src/util/exec.js'
import {netctl} from '../helpers/cli.js'
import {describeLab, nsExec, ping, twoNodePods, useLab} from '../helpers/lab.js'

/** The fix lines of one finding in netctl's text output, as a user would copy them. */
function fixOf(text: string, code: string): string[] {
  const lines = text.split('\n')
  const start = lines.findIndex((l) => l.includes(` ${code} `))
  expect(start, text).toBeGreaterThanOrEqual(0)
  const fix = lines.findIndex((l, i) => i > start && l.trim() === 'fix:')
  const end = lines.findIndex((l, i) => i > fix && l.trim().startsWith(`(netctl explain ${code})`))
  return lines.slice(fix + 1, end).map((l) => l.trim())
}

describeLab('a fix on a lab node, pasted into a shell, repairs the lab', () => {
  const lab = useLab('fl-fix', [
    '--backend',
    'flannel-vxlan',
    '--nodes',
    '2',
    '--pods-per-node',
    '1',
    '--proxy-mode',
    'none',
  ])

  it('FDB_MISSING: check and trace print ip netns exec LAB.node1 bridge fdb replace …, no kubectl; run as printed, the pods ping again', async () => {
    const l = lab.get()
    const {n1, n2, p1, p2} = twoNodePods(l)
    expect(await ping(p1.netns, p2.ip)).toBe(true)

    // the fault: node1 forgets where node2's VTEP MAC lives
    const del = await nsExec(n1.netns, ['bridge', 'fdb', 'del', n2.vtepMAC, 'dev', 'flannel.1', 'dst', n2.ip])
    expect(del.code, del.stderr).toBe(0)
    expect(await ping(p1.netns, p2.ip)).toBe(false)

    const check = await netctl(['check', '--lab', l.name])
    expect(check.code).toBe(1)
    const fix = fixOf(check.stdout, 'FDB_MISSING')
    expect(fix).toContain(
      `ip netns exec ${n1.netns} bridge fdb replace ${n2.vtepMAC} dev flannel.1 dst ${n2.ip} self permanent`,
    )
    expect(check.stdout).not.toContain('kubectl')
    const trace = await netctl(['trace', p1.name, p2.name, '--lab', l.name])
    expect(trace.code).toBe(1)
    expect(fixOf(trace.stdout, 'FDB_MISSING')).toEqual(fix)
    expect(trace.stdout).not.toContain('kubectl')

    // pasted into a root shell on this machine, as printed
    const sh = await run('sh', ['-e', '-c', fix.join('\n')])
    expect(sh.code, sh.stderr).toBe(0)
    expect(await ping(p1.netns, p2.ip)).toBe(true)
    expect((await netctl(['check', '--lab', l.name])).stdout).not.toContain('FDB_MISSING')
  })
})
