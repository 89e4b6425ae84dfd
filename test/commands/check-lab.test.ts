import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {expect, it} from 'vitest'

import {fdbLine, neighLine, routeLine} from '../../src/analyze/checks/evidence.js'
import type {Finding} from '../../src/model/finding.js'
import type {Snapshot} from '../../src/model/snapshot.js'
import {run} from '../../src/util/exec.js'
import {validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {describeLab, nsExec, ping, useLab} from '../helpers/lab.js'

const PREFIX = 'chk'
const validate = validatorFor('check')

interface CheckJson {
  findings: Finding[]
  counts: {error: number}
}

async function check(lab: string): Promise<{code: number; json: CheckJson}> {
  const r = await netctlJson<CheckJson>(['check', '--lab', lab])
  expect(validate(r.json)).toBe(true)
  return r
}

const errorsOf = (j: CheckJson): string[] =>
  j.findings.filter((f) => f.severity === 'error').map((f) => `${f.code} ${f.node ?? '*'}`)

/** Run a command in a node's namespace; it must succeed. */
async function inNode(netns: string, argv: string[]): Promise<void> {
  const r = await nsExec(netns, argv)
  expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0)
}

describeLab('netctl check on a 3-node flannel vxlan lab', () => {
  const lab = useLab(PREFIX, ['--backend', 'flannel-vxlan', '--nodes', '3', '--pods-per-node', '1'])

  it('healthy: exit 0, no error findings', async () => {
    const r = await check(lab.get().name)
    expect(errorsOf(r.json)).toEqual([])
    expect(r.code).toBe(0)
  })

  it("quotes evidence as the kernel's own tools print it (ip route, ip neigh, bridge fdb)", async () => {
    const l = lab.get()
    const s = JSON.parse((await netctl(['collect', '--lab', l.name])).stdout) as Snapshot
    const n1 = l.nodes[0]!
    const state = s.nodeStates[n1.name]!
    const lines = async (argv: string[]) =>
      (await run(argv[0]!, argv.slice(1))).stdout.split('\n').map((x) => x.trimEnd())
    const routes = await lines(['ip', '-n', n1.netns, 'route', 'show'])
    for (const r of state.routes.filter((x) => x.family === 'inet' && x.table === 'main'))
      expect(routes).toContain(routeLine(r))
    const neigh = await lines(['ip', '-n', n1.netns, 'neigh', 'show', 'nud', 'all'])
    for (const n of state.neighbours.filter((x) => x.dev === 'flannel.1')) expect(neigh).toContain(neighLine(n))
    const fdb = await lines(['bridge', '-n', n1.netns, 'fdb', 'show'])
    const vx = state.fdb.filter((x) => x.dev === 'flannel.1')
    expect(vx.length).toBe(2)
    for (const f of vx) expect(fdb).toContain(fdbLine(f))
  })

  it('names what was broken: a deleted FDB entry, a wrong PERMANENT MAC, flannel.1 down, ip_forward off; exit 1', async () => {
    const l = lab.get()
    const [n1, n2, n3] = l.nodes as [(typeof l.nodes)[0], (typeof l.nodes)[0], (typeof l.nodes)[0]]
    const pod = (node: string) => l.pods.find((p) => p.node === node)!
    expect(await ping(pod('node1').netns, pod('node2').ip)).toBe(true)

    await inNode(n1.netns, ['bridge', 'fdb', 'del', n2.vtepMAC, 'dev', 'flannel.1', 'dst', n2.ip])
    const vtep3 = n3.podCIDR.split('/')[0]!
    await inNode(n2.netns, [
      'ip',
      'neigh',
      'replace',
      vtep3,
      'lladdr',
      '02:00:00:00:00:33',
      'dev',
      'flannel.1',
      'nud',
      'permanent',
    ])
    await inNode(n3.netns, ['ip', 'link', 'set', 'flannel.1', 'down'])
    await inNode(n1.netns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0'])
    // the faults are real: the kernel no longer delivers
    expect(await ping(pod('node1').netns, pod('node2').ip)).toBe(false)
    expect(await ping(pod('node2').netns, pod('node3').ip)).toBe(false)

    const r = await check(l.name)
    expect(r.code).toBe(1)
    expect(errorsOf(r.json).sort()).toEqual([
      'FDB_MISSING node1',
      'IP_FORWARD_DISABLED node1',
      'TUNNEL_DEVICE_DOWN node3',
      'VTEP_MAC_MISMATCH node2',
    ])
    const get = (code: string) => r.json.findings.find((f) => f.code === code)!
    expect(get('FDB_MISSING').subject).toBe(`flannel.1 → node2 (${n2.ip})`)
    expect(get('FDB_MISSING').fix).toContain(
      `bridge fdb replace ${n2.vtepMAC} dev flannel.1 dst ${n2.ip} self permanent`,
    )
    expect(get('VTEP_MAC_MISMATCH').subject).toBe(`flannel.1 → node3 (${n3.ip})`)
    expect(get('VTEP_MAC_MISMATCH').evidence).toContain(`${vtep3} dev flannel.1 lladdr 02:00:00:00:00:33 PERMANENT`)
    expect(get('TUNNEL_DEVICE_DOWN').evidence[0]).toMatch(/ flannel\.1: <BROADCAST,MULTICAST> mtu 1450 state DOWN /)
    expect(get('IP_FORWARD_DISABLED').evidence).toEqual(['net.ipv4.ip_forward = 0'])

    // the text form exits the same way and says the same
    const text = await netctl(['check', '--lab', l.name, '--node', 'node3'])
    expect(text.code).toBe(1)
    expect(text.stdout).toContain('TUNNEL_DEVICE_DOWN node3: flannel.1')
    expect(text.stdout).not.toContain('FDB_MISSING')
  })
})

describeLab('netctl check on a 3-node Calico BGP lab', () => {
  const lab = useLab(PREFIX, ['--backend', 'calico-bgp', '--nodes', '3', '--pods-per-node', '1'])

  /** Check until `done` holds (BIRD needs a moment to notice a peer is gone); the last result either way. */
  async function checkUntil(done: (j: CheckJson) => boolean): Promise<{code: number; json: CheckJson}> {
    let r = await check(lab.get().name)
    for (let i = 0; i < 30 && !done(r.json); i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      r = await check(lab.get().name)
    }
    return r
  }

  it('healthy: every session Established, exit 0', async () => {
    const r = await checkUntil((j) => j.counts.error === 0)
    expect(errorsOf(r.json)).toEqual([])
    expect(r.code).toBe(0)
  })

  it("BIRD stopped on node2 (by its pid file): its peers' sessions to it are down, and node2 is named", async () => {
    const l = lab.get()
    const n2 = l.nodes.find((n) => n.name === 'node2')!
    const pid = Number(
      (await readFile(path.join(l.stateDir, 'nodes', 'node2', 'run', 'calico', 'bird.pid'), 'utf8')).trim(),
    )
    expect(Number.isInteger(pid) && pid > 1).toBe(true)
    process.kill(pid, 'SIGTERM')
    const down = (j: CheckJson) =>
      ['node1', 'node3'].every((n) => j.findings.some((f) => f.code === 'BGP_SESSION_DOWN' && f.node === n))
    const r = await checkUntil(down)
    expect(r.code).toBe(1)
    const sessions = r.json.findings.filter((f) => f.code === 'BGP_SESSION_DOWN')
    const mesh = `Mesh_${n2.ip.replace(/\./g, '_')}`
    expect(sessions.map((f) => `${f.node}: ${f.subject}`).sort()).toEqual([
      `node1: ${mesh} → node2`,
      'node2: BIRD',
      `node3: ${mesh} → node2`,
    ])
    expect(sessions.find((f) => f.node === 'node1')!.evidence[0]).toMatch(new RegExp(`^${mesh} BGP +--- +start `))
    // what else is wrong follows from it: routes to and from node2's block are gone
    expect(new Set(r.json.findings.filter((f) => f.severity === 'error').map((f) => f.code))).toEqual(
      new Set(['BGP_SESSION_DOWN', 'ROUTE_MISSING']),
    )
  })
})
