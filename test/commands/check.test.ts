import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {synthesizeSnapshot} from '../../bench/synth.js'
import {findingsAsTyped} from '../../src/analyze/catalogue/as-typed.js'
import {factsMakerFor, runChecks} from '../../src/analyze/checks/index.js'
import {labInventory} from '../../src/lab/inventory.js'
import {planLab} from '../../src/lab/topology.js'
import type {Snapshot} from '../../src/model/snapshot.js'
import {writeSnapshotFile} from '../../src/model/snapshot-file.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson, REPO} from '../helpers/cli.js'
import {snapshotFixture, snapshotFixturePath} from '../helpers/fixtures.js'

// Runs the built CLI (npm run build first) on recorded snapshots, as a user does.
const dir = mkdtempSync(path.join(tmpdir(), 'chk-cmd-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))
const snap = (name: string): string => snapshotFixturePath(`${name}-lab`)
const validate = validatorFor('check')

/** A recorded snapshot with one fault: ip_forward off on node2. */
function forwardingOff(): string {
  const s = JSON.parse(readFileSync(snap('flannel-vxlan'), 'utf8'))
  s.nodeStates.node2.sysctls['net.ipv4.ip_forward'] = '0'
  // as a lab collected today records it: the namespace the node is
  s.nodes.find((n: {name: string}) => n.name === 'node2').netns = `${s.cluster.name}.node2`
  const file = path.join(dir, 'fwd-off.json')
  writeFileSync(file, JSON.stringify(s))
  return file
}

describe('netctl check --snapshot', () => {
  it('a healthy cluster: exit 0, "no findings"', async () => {
    const file = snap('calico-bgp')
    const {cluster} = JSON.parse(readFileSync(file, 'utf8')) as {cluster: {name: string}}
    const r = await netctl(['check', '--snapshot', file])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`checked 3 nodes of ${cluster.name} (calico-bgp)\n\nno findings\n`)
  })

  it('an error finding: exit 1, printed with its evidence and fix', async () => {
    const r = await netctl(['check', '--snapshot', forwardingOff()])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('error   IP_FORWARD_DISABLED node2: net.ipv4.ip_forward')
    expect(r.stdout).toContain('      net.ipv4.ip_forward = 0')
    // a lab's node: the fix as typed on this machine, in the node's namespace (and nothing for /etc)
    const netns = (JSON.parse(readFileSync(forwardingOff(), 'utf8')) as Snapshot).nodes.find(
      (n) => n.name === 'node2',
    )!.netns!
    expect(r.stdout).toContain(`      ip netns exec ${netns} sysctl -w net.ipv4.ip_forward=1`)
    expect(r.stdout).not.toContain('/etc/sysctl.d')
    expect(r.stdout.trimEnd().endsWith('1 finding: 1 error')).toBe(true)
  })

  it('--json follows schemas/check.schema.json, with the same exit codes', async () => {
    const bad = await netctlJson(['check', '--snapshot', forwardingOff()])
    expect(bad.code).toBe(1)
    expect(validate(bad.json), describeSchemaError(validate.errors)).toBe(true)
    expect(bad.json).toMatchObject({
      source: {kind: 'snapshot'},
      collected: 3,
      unreachable: 0,
      counts: {error: 1, total: 1, byCode: {IP_FORWARD_DISABLED: 1}},
    })
    const s = JSON.parse(readFileSync(forwardingOff(), 'utf8')) as Snapshot
    expect(bad.json.findings).toEqual(findingsAsTyped(runChecks(s), s))
    const good = await netctlJson(['check', '--snapshot', snap('flannel-udp')])
    expect(good.code).toBe(0)
    expect(validate(good.json), describeSchemaError(validate.errors)).toBe(true)
  })

  it('--node limits the report to findings about that node', async () => {
    const other = await netctlJson(['check', '--snapshot', forwardingOff(), '--node', 'node1', '--node', 'node3'])
    expect(other.code).toBe(0)
    expect(other.json).toMatchObject({nodes: ['node1', 'node3'], findings: []})
    const r = await netctl(['check', '--snapshot', forwardingOff(), '--node', 'node2'])
    expect(r.code).toBe(1)
    expect(r.stdout.split('\n')[0]).toBe('checked node2 (of 3 nodes) of col-fx (flannel-vxlan)')
  })

  it('--workers: the same report with one thread or more; under 1 a usage error', async () => {
    const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 20)
    s.nodeStates.node7!.sysctls['net.ipv4.ip_forward'] = '0'
    const file = path.join(dir, 'workers.jsonl')
    await writeSnapshotFile(file, s, factsMakerFor(s.cluster))
    const one = await netctlJson(['check', '--snapshot', file, '--workers', '1'])
    const two = await netctlJson(['check', '--snapshot', file, '--workers', '2'])
    expect(one.code).toBe(1)
    expect(two).toEqual(one)
    const zero = await netctl(['check', '--snapshot', file, '--workers', '0'])
    expect(zero.code).toBe(2)
    expect(zero.stderr.split('\n')[0]).toMatch(/workers/)
    // a file this small stays in-process; the built worker module (dist/, as the CLI loads it) checks it when forced
    const built = (await import(
      path.join(REPO, 'dist/src/services/check.js')
    )) as typeof import('../../src/services/check.js')
    const forced = await built.checkSnapshotFile(file, undefined, {minBytes: 0, workers: 2})
    expect(forced.workers).toBe(Math.min(2, availableParallelism()) >= 2 ? 2 : 0)
    expect(JSON.parse(JSON.stringify(forced.result.findings))).toEqual(one.json.findings)
  })

  it('an unknown --node is a usage error with a suggestion', async () => {
    const r = await netctl(['check', '--snapshot', snap('calico-rr'), '--node', 'nod4'])
    expect(r.code).toBe(2)
    expect(r.stderr.split('\n')[0]).toBe(
      "netctl: no node 'nod4' in chk-calico-rr: did you mean node4? (nodes: node1, node2, node3, node4)",
    )
  })

  it('nothing to check (and no kubeconfig either), or two sources at once: usage errors in one line', async () => {
    const env = {HOME: '/nonexistent', KUBECONFIG: '', KUBERNETES_SERVICE_HOST: ''}
    for (const [args, message] of [
      [
        [],
        /^netctl: no Kubernetes config: .*; or name a lab \(--lab NAME\), an inventory file \(--inventory FILE\) or a snapshot \(--snapshot FILE\)$/,
      ],
      [
        ['--lab', 'x', '--snapshot', snap('calico-rr')],
        /^netctl: --lab=x cannot also be provided when using --snapshot$/,
      ],
      [
        ['--snapshot', snap('calico-rr'), '--kubeconfig', 'k.yaml'],
        /^netctl: --kubeconfig=k.yaml cannot also be provided when using --snapshot$/,
      ],
      [['--lab', 'x', '--inventory', 'y'], /^netctl: --lab and --inventory name two different clusters: give one$/],
    ] as const) {
      const r = await netctl(['check', ...args], {env})
      expect(r.code).toBe(2)
      expect(r.stderr.split('\n')[0]).toMatch(message)
    }
  })

  it('no node reachable (live): exit 3, the NODE_UNREACHABLE findings still reported', async () => {
    const plan = planLab(
      {
        name: 'chk-ghost-q7',
        nodes: 2,
        podsPerNode: 1,
        backend: 'flannel-vxlan',
        topology: 'flat',
        routeReflectors: 1,
        ssh: false,
      },
      dir,
    )
    const inv = path.join(dir, 'ghost.yaml')
    writeFileSync(inv, stringify(labInventory(plan)))
    const r = await netctlJson(['check', '--inventory', inv, '--timeout', '2'])
    expect(r.code).toBe(3)
    expect(validate(r.json), describeSchemaError(validate.errors)).toBe(true)
    expect(r.json.collected).toBe(0)
    const findings = r.json.findings as {code: string; node?: string; subject: string}[]
    expect(findings.filter((f) => f.node !== undefined).map((f) => `${f.code} ${f.node}`)).toEqual([
      'NODE_UNREACHABLE node1',
      'NODE_UNREACHABLE node2',
    ])
    // what the inventory's objects say without any node: the lab's Service that has no endpoints by design
    expect(findings.filter((f) => f.node === undefined).map((f) => f.code)).toEqual(['SERVICE_NO_ENDPOINTS'])
    expect(r.json.source).toEqual({kind: 'inventory', name: inv})
  })
})

describe('schemas/check.schema.json', () => {
  const schema = (name: string) => JSON.parse(readFileSync(path.join(REPO, 'schemas', `${name}.schema.json`), 'utf8'))
  it('inlines exactly schemas/finding.schema.json as its finding definition', () => {
    const {$schema: _s, $id: _i, ...finding} = schema('finding')
    expect(schema('check').definitions.finding).toEqual(finding)
  })

  it('rejects a result that drifted from the contract', () => {
    const ok = {
      cluster: {name: 'c', backend: 'b', clusterCIDR: '10.0.0.0/8'},
      source: {kind: 'snapshot', name: 's.json'},
      nodes: ['n'],
      collected: 1,
      unreachable: 0,
      findings: [],
      counts: {error: 0, warning: 0, info: 0, total: 0, byCode: {}},
    }
    expect(validate(ok), describeSchemaError(validate.errors)).toBe(true)
    expect(validate({...ok, counts: {...ok.counts, byCode: {NOT_A_CODE: 1}}})).toBe(false)
    expect(
      validate({
        ...ok,
        findings: [{code: 'FDB_MISSING', severity: 'fatal', subject: 'x', message: 'y', evidence: [], fix: ''}],
      }),
    ).toBe(false)
    expect(validate({...ok, extra: 1})).toBe(false)
  })
})
