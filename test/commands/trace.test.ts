import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {labInventory} from '../../src/lab/inventory.js'
import {planLab} from '../../src/lab/topology.js'
import type {Trace} from '../../src/model/trace.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson, REPO} from '../helpers/cli.js'
import {describeLab, ipJson, nsExec, ping, useLab} from '../helpers/lab.js'
import {dotProblems, mermaidProblems} from '../render/graph-syntax.js'

const SNAPSHOTS = ['flannel-vxlan-lab.json', 'flannel-host-gw-lab.json'].map((f) =>
  path.join(REPO, 'fixtures', 'snapshots', f),
)
const dir = mkdtempSync(path.join(tmpdir(), 'tcm-trace-cmd-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** The exit code docs/design.md gives a trace, from the trace alone (no node unreachable in these snapshots). */
const expectedExit = (t: Trace): number =>
  t.disposition === 'DELIVERED' &&
  t.returnPath?.disposition === 'DELIVERED' &&
  !t.findings.some((f) => f.severity === 'error')
    ? 0
    : 1

function validTrace(json: unknown): void {
  const validate = validatorFor('trace')
  expect(validate(json), describeSchemaError(validate.errors)).toBe(true)
}

describe.each(SNAPSHOTS)('netctl trace --snapshot %s', (snap) => {
  it('--json: a trace valid against its schema, the exit code it implies', async () => {
    const r = await netctlJson<Trace>(['trace', 'pod-node1-1', 'pod-node3-2', '--snapshot', snap])
    validTrace(r.json)
    expect(r.json.src).toMatchObject({pod: 'pod-node1-1', node: 'node1'})
    expect(r.json.dst).toMatchObject({pod: 'pod-node3-2', node: 'node3'})
    expect(r.code).toBe(expectedExit(r.json))
    expect(r.stderr).toBe('')
  })

  it('-o json is --json, byte for byte; endpoints by IP and NAMESPACE/NAME give the same trace', async () => {
    const a = await netctl(['trace', 'pod-node1-1', 'pod-node3-2', '--snapshot', snap, '--json'])
    const b = await netctl(['trace', 'pod-node1-1', 'pod-node3-2', '--snapshot', snap, '-o', 'json'])
    const c = await netctl(['trace', '172.20.1.2', 'default/pod-node3-2', '--snapshot', snap, '--output=json'])
    expect(b).toEqual(a)
    expect(c.stdout).toBe(a.stdout)
  })

  it('text: the verdict first, then the path; nothing on stderr', async () => {
    const json = (await netctlJson<Trace>(['trace', 'pod-node1-1', 'pod-node3-2', '--snapshot', snap])).json
    const r = await netctl(['trace', 'pod-node1-1', 'pod-node3-2', '--snapshot', snap])
    const lines = r.stdout.split('\n')
    expect(lines[0]).toBe(`${json.disposition}  pod-node1-1 (172.20.1.2) → pod-node3-2 (172.20.3.3)  icmp 84 bytes`)
    expect(lines.findIndex((l) => l.startsWith('Path  '))).toBeGreaterThan(0)
    expect(r.stdout).not.toMatch(/\u001B\[/)
    expect(r.code).toBe(expectedExit(json))
    expect(r.stderr).toBe('')
  })

  it.each([
    ['mermaid', mermaidProblems],
    ['dot', dotProblems],
  ] as const)('-o %s: a valid graph', async (format, problems) => {
    const r = await netctl(['trace', 'pod-node1-1', 'pod-node3-2', '--snapshot', snap, '-o', format])
    expect(problems(r.stdout.trimEnd())).toEqual([])
    expect(r.stdout.split('\n')[0]).toBe(format === 'mermaid' ? 'flowchart LR' : 'digraph trace {')
  })
})

describe('-n with a snapshot or a lab: the namespace of a bare NAME and of svc/NAME, as kubectl reads it', () => {
  const services = path.join(REPO, 'fixtures', 'snapshots', 'flannel-vxlan-services-iptables-lab.json')

  it('svc/kube-dns -n kube-system over a snapshot is the cluster DNS; without -n it is looked for in default, and said where it is', async () => {
    const r = await netctlJson<Trace>([
      'trace',
      'default/pod-node1-2',
      'svc/kube-dns',
      '-n',
      'kube-system',
      '--snapshot',
      services,
    ])
    expect(r.stderr).toBe('')
    expect(r.json.service).toMatchObject({namespace: 'kube-system', name: 'kube-dns', port: {port: 53}})
    validTrace(r.json)
    const without = await netctl(['trace', 'default/pod-node1-2', 'svc/kube-dns', '--snapshot', services])
    expect(without.code).toBe(2)
    expect(without.stderr).toMatch(/kube-system/)
  })

  it('a bare pod NAME is a pod of -n too: one line naming the namespace it is in, exit 2', async () => {
    const r = await netctl(['trace', 'pod-node1-2', 'svc/kube-dns', '-n', 'kube-system', '--snapshot', services])
    expect(r.code).toBe(2)
    expect(r.stderr.split('\n')[0]).toBe(
      'netctl: no pod kube-system/pod-node1-2 in cluster sqfx-ipt (pod-node1-2 is in namespace default)',
    )
  })
})

describe('netctl trace usage errors: exit 2, one line', () => {
  const snap = SNAPSHOTS[0]!
  it.each([
    // nothing named and no kubeconfig (HOME below has none): Kubernetes cannot be found either
    [
      ['a', 'b'],
      /^netctl: no Kubernetes config: .*; or name a lab \(--lab NAME\), an inventory file \(--inventory FILE\) or a snapshot \(--snapshot FILE\)$/,
    ],
    [['a', 'b', '--snapshot', snap, '--lab', 'x'], 'netctl: --lab=x cannot also be provided when using --snapshot'],
    [
      ['a', 'b', '--lab', 'x', '--inventory', 'y'],
      'netctl: --lab and --inventory name two different clusters: give one',
    ],
    [
      ['a', 'b', '--lab', 'x', '--context', 'prod'],
      'netctl: --context is for a Kubernetes cluster and cannot be used with --lab',
    ],
    [
      ['pod-node1-1', 'pod-node3-2', '--snapshot', snap, '--protocol', 'sctp'],
      'netctl: Expected --protocol=sctp to be one of: icmp, tcp, udp',
    ],
    [
      ['pod-node1-1', 'pod-node3-2', '--snapshot', snap, '--protocol', 'tcp'],
      'netctl: --protocol tcp needs --port (the destination port)',
    ],
    [
      ['pod-node1-1', 'pod-node3-2', '--snapshot', snap, '--port', '80'],
      'netctl: --port is for --protocol tcp or udp; ICMP has no ports',
    ],
    [
      ['pod-node1-1', 'pod-node3-2', '--snapshot', snap, '--port', '80', '-p', 'icmp'],
      'netctl: --port is for --protocol tcp or udp; ICMP has no ports',
    ],
    [
      ['pod-node1-1', 'pod-node3-2', '--snapshot', snap, '-o', 'svg'],
      'netctl: Expected --output=svg to be one of: text, json, yaml, mermaid, dot',
    ],
    [
      ['pod-node1-1', 'pod-node3-2', '--snapshot', '/nonexistent/snap.json'],
      'netctl: /nonexistent/snap.json: no such file',
    ],
    [
      ['pod-node1-1', 'pod-node3-2', '--lab', 'tcm-no-such-lab'],
      "netctl: no lab named 'tcm-no-such-lab' (see netctl lab list)",
    ],
  ])('%j', async (args, message) => {
    const r = await netctl(['trace', ...args], {env: {HOME: '/nonexistent', KUBECONFIG: ''}})
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    if (typeof message === 'string') expect(r.stderr.split('\n')[0]).toBe(message)
    else expect(r.stderr.split('\n')[0]).toMatch(message)
    expect(r.stderr.split('\n')[1]).toBe("See 'netctl trace --help'.")
  })

  it.each([
    [
      ['pod-node1-1', 'pod-nod3-2', '--snapshot', snap],
      "netctl: no pod or node named 'pod-nod3-2' in cluster col-fx (did you mean pod-node3-2?)",
    ],
    [
      ['prod/pod-node1-1', 'pod-node3-2', '--snapshot', snap],
      'netctl: no pod prod/pod-node1-1 in cluster col-fx (pod-node1-1 is in namespace default)',
    ],
    [
      ['pod-node1-1', '172.20.3.99', '--snapshot', snap],
      "netctl: no pod with IP 172.20.3.99 in cluster col-fx (it is in node3's podCIDR 172.20.3.0/24, but no pod there has it)",
    ],
  ])('an endpoint not in the cluster: exit 2, the one line says it all %j', async (args, message) => {
    const r = await netctl(['trace', ...args])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe(`${message}\n`)
  })

  it('with --json or -o json the error is JSON, exit 2 all the same', async () => {
    for (const flag of [['--json'], ['-o', 'json']]) {
      const r = await netctl(['trace', 'pod-node1-1', 'nobody', '--snapshot', snap, ...flag])
      expect(r.code).toBe(2)
      expect(JSON.parse(r.stdout)).toEqual({
        error: {code: 'USAGE', message: "no pod or node named 'nobody' in cluster col-fx", exitCode: 2},
      })
    }
  })

  it('--json with -o mermaid asks for two outputs', async () => {
    const r = await netctlJson(['trace', 'pod-node1-1', 'pod-node3-2', '--snapshot', snap, '-o', 'mermaid'])
    expect(r.code).toBe(2)
    expect(r.json.error.message).toBe('--json and -o mermaid ask for two outputs: give one')
  })
})

describe('netctl trace on nodes that cannot be reached (no lab needed)', () => {
  /** An inventory of a 3-node lab that does not exist: every node's namespace is missing. */
  function ghostInventory(): string {
    const plan = planLab(
      {
        name: 'tcm-ghost-q7',
        nodes: 3,
        podsPerNode: 2,
        backend: 'flannel-vxlan',
        topology: 'flat',
        routeReflectors: 1,
        ssh: false,
      },
      dir,
    )
    const file = path.join(dir, 'ghost.yaml')
    writeFileSync(file, stringify(labInventory(plan)))
    return file
  }

  it("SRC's node unreachable: exit 3, NODE_UNREACHABLE in the trace; only the two nodes involved were tried", async () => {
    const r = await netctlJson<Trace>([
      'trace',
      'pod-node1-1',
      'pod-node3-2',
      '--inventory',
      ghostInventory(),
      '--timeout',
      '2',
      '--debug',
    ])
    expect(r.code).toBe(3)
    validTrace(r.json)
    const unreachable = r.json.findings.filter((f) => f.code === 'NODE_UNREACHABLE').map((f) => [f.node, f.message])
    expect(unreachable).toEqual([
      ['node1', 'netns tcm-ghost-q7.node1: no such network namespace'],
      ['node3', 'netns tcm-ghost-q7.node3: no such network namespace'],
    ])
    expect(r.stderr.trim()).toBe('debug: trace collected [node1 node3] (2 of 3 nodes)')
  })

  it('text to a pipe: the result on stdout and no progress display', async () => {
    const r = await netctl(['trace', 'pod-node2-1', 'node2', '--inventory', ghostInventory(), '--timeout', '2'])
    expect(r.code).toBe(3)
    expect(r.stderr).toBe('')
    expect(r.stdout).toMatch(/^\w+ {2}pod-node2-1 \(172\.20\.2\.2\) → node2 \(172\.31\.0\.12\) {2}icmp 84 bytes\n/)
    expect(r.stdout).toContain('NODE_UNREACHABLE node2: node2 (172.31.0.12)')
  })
})

describeLab('netctl trace live on a 3-node flannel vxlan lab', () => {
  const lab = useLab('tcm', ['--nodes', '3', '--backend', 'flannel-vxlan'])
  const pod = (name: string) => lab.get().pods.find((p) => p.name === name)!

  it('collects only the nodes of SRC and DST, and answers with a valid trace', async () => {
    const r = await netctlJson<Trace>(['trace', 'pod-node1-1', 'pod-node3-2', '--lab', lab.get().name, '--debug'])
    validTrace(r.json)
    expect(r.json.src).toMatchObject({
      pod: 'pod-node1-1',
      node: 'node1',
      ip: pod('pod-node1-1').ip,
      netns: pod('pod-node1-1').netns,
    })
    expect(r.json.dst).toMatchObject({pod: 'pod-node3-2', node: 'node3', ip: pod('pod-node3-2').ip})
    // the endpoints as the kernel has them: the address lives in the pod's namespace
    const addrs = await ipJson<Array<{addr_info: Array<{local: string}>}>>(pod('pod-node3-2').netns, [
      '-4',
      'addr',
      'show',
      'dev',
      'eth0',
    ])
    expect(addrs.flatMap((a) => a.addr_info.map((i) => i.local))).toContain(r.json.dst.ip)
    // a vxlan path between node1 and node3 never needs node2, nor the pods that are not its ends
    expect(r.stderr.trim()).toBe(
      'debug: trace collected [node1 node3] (2 of 3 nodes); pods read: node1 default/pod-node1-1, node3 default/pod-node3-2',
    )
    expect([0, 1]).toContain(r.code)
    expect(r.code).toBe(expectedExit(r.json))
  })

  it('text to a pipe: the verdict line first, no progress display on stderr', async () => {
    const r = await netctl(['trace', 'pod-node1-1', pod('pod-node3-2').ip, '--lab', lab.get().name])
    expect(r.stdout.split('\n')[0]).toMatch(
      new RegExp(`^[A-Z_]+ {2}pod-node1-1 \\(${pod('pod-node1-1').ip.replace(/\./g, '\\.')}\\) → pod-node3-2 `),
    )
    expect(r.stderr).toBe('')
    expect([0, 1]).toContain(r.code)
  })

  it('END TO END: DELIVERED with exit 0, as a real ping agrees', async () => {
    expect(await ping(pod('pod-node1-1').netns, pod('pod-node3-2').ip)).toBe(true)
    const r = await netctlJson<Trace>(['trace', 'pod-node1-1', 'pod-node3-2', '--lab', lab.get().name])
    expect(r.json.disposition).toBe('DELIVERED')
    expect(r.json.returnPath?.disposition).toBe('DELIVERED')
    expect(r.code).toBe(0)
  })

  it("reads only the path's pods, and still finds a fault inside one of them (a pod MTU above the vxlan room)", async () => {
    const dst = pod('pod-node3-2')
    const off = pod('pod-node3-1')
    const setMtu = (netns: string, mtu: number) => nsExec(netns, ['ip', 'link', 'set', 'dev', 'eth0', 'mtu', `${mtu}`])
    const [was] = await ipJson<Array<{mtu: number}>>(dst.netns, ['link', 'show', 'dev', 'eth0'])
    expect(was!.mtu).toBeLessThan(1500)
    expect((await setMtu(dst.netns, 1500)).code).toBe(0)
    expect((await setMtu(off.netns, 1500)).code).toBe(0)
    try {
      const r = await netctlJson<Trace>(['trace', 'pod-node1-1', 'pod-node3-2', '--lab', lab.get().name, '--debug'])
      validTrace(r.json)
      expect(r.stderr.trim()).toMatch(/; pods read: node1 default\/pod-node1-1, node3 default\/pod-node3-2$/)
      const encap = r.json.findings.filter((f) => f.code === 'MTU_EXCEEDS_ENCAP').map((f) => f.subject)
      expect(encap).toEqual(['pod default/pod-node3-2 eth0'])
      expect(r.code).toBe(1)
      // check reads every pod: it reports both
      const c = await netctlJson<{findings: Array<{code: string; subject: string}>}>(['check', '--lab', lab.get().name])
      const all = c.json.findings.filter((f) => f.code === 'MTU_EXCEEDS_ENCAP').map((f) => f.subject)
      expect(all).toEqual(expect.arrayContaining(['pod default/pod-node3-1 eth0', 'pod default/pod-node3-2 eth0']))
    } finally {
      await setMtu(dst.netns, was!.mtu)
      await setMtu(off.netns, was!.mtu)
    }
  })

  it("END TO END: node1 loses node3's FDB entry: FDB_MISS, exit 1, as a real ping agrees", async () => {
    const {name, nodes} = lab.get()
    const node3 = nodes.find((n) => n.name === 'node3')!
    expect(
      (
        await nsExec(`${name}.node1`, [
          'bridge',
          'fdb',
          'del',
          node3.vtepMAC,
          'dev',
          'flannel.1',
          'dst',
          node3.ip,
          'self',
        ])
      ).code,
    ).toBe(0)
    try {
      expect(await ping(pod('pod-node1-1').netns, pod('pod-node3-2').ip)).toBe(false)
      const r = await netctlJson<Trace>(['trace', 'pod-node1-1', 'pod-node3-2', '--lab', name])
      expect(r.json.disposition).toBe('FDB_MISS')
      expect(r.code).toBe(1)
    } finally {
      await nsExec(`${name}.node1`, [
        'bridge',
        'fdb',
        'append',
        node3.vtepMAC,
        'dev',
        'flannel.1',
        'dst',
        node3.ip,
        'self',
        'permanent',
      ])
    }
  })
})
