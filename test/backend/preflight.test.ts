import {readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {CATALOGUE, fillTemplate} from '../../src/analyze/catalogue/index.js'
import {planSwitch} from '../../src/backend/plan/plan.js'
import {evaluatePreflight, PREFLIGHT_CODES} from '../../src/backend/plan/preflight.js'
import {type NodeProbeAnswer, parsePreflightOutput, preflightScript} from '../../src/backend/plan/preflight-probe.js'
import type {NodeState} from '../../src/model/node-state.js'
import type {Snapshot} from '../../src/model/snapshot.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {REPO} from '../helpers/cli.js'
import {fixtureLab, labFacts} from './helpers.js'

const captured = (name: string): string => readFileSync(path.join(REPO, 'fixtures/backend', name), 'utf8')

describe('the preflight probe', () => {
  it("reads the kernel's route to each peer, the link kinds and the programs (routed lab, node1)", () => {
    const a = parsePreflightOutput(captured('preflight-routed-node1.out'))!
    expect(a.routes.map((r) => [r.peer, r.gateway ?? null])).toEqual([
      ['172.31.1.12', null],
      ['172.31.2.11', '172.31.1.1'],
      ['172.20.9.9', '172.31.1.1'],
    ])
    expect(a.kinds).toEqual({vxlan: 'yes', tun: 'yes', ipip: 'no'})
    expect(a.tools).toMatchObject({socat: true, bird: true, 'no-such-tool': false})
  })

  it("keeps the kernel's words when there is no route", () => {
    const a = parsePreflightOutput(captured('preflight-flat-node1.out'))!
    expect(a.routes[1]).toEqual({peer: '172.16.99.1', error: 'RTNETLINK answers: Network is unreachable'})
  })

  it('output cut short is no answer', () => {
    const text = captured('preflight-flat-node1.out')
    expect(parsePreflightOutput(text.slice(0, text.indexOf('kind ipip')))).toBeUndefined()
  })

  it('never takes a value that is not an address or a plain name into the script', () => {
    expect(() => preflightScript(['172.31.0.12; reboot'], [], [])).toThrow(/not an IPv4 address/)
    expect(() => preflightScript([], ['vxlan$(x)'], [])).toThrow(/bad name/)
  })
})

/** A snapshot of a lab plan's nodes: each with its uplink address, as collected. */
function snapshotOf(lab: ReturnType<typeof fixtureLab>): Snapshot {
  const nodeStates: Record<string, NodeState> = {}
  for (const n of lab.nodes) {
    nodeStates[n.name] = {
      node: n.name,
      collectedAt: '',
      links: [],
      routes: [],
      rules: [],
      neighbours: [],
      fdb: [],
      sysctls: {},
      processes: [],
      pods: [],
      sections: {},
      addresses: [
        {dev: 'eth0', family: 'inet', local: n.ip, prefixlen: Number(n.subnet.split('/')[1]), scope: 'global'},
      ],
    }
  }
  return {
    schemaVersion: 1,
    generator: {name: 'netctl', version: 'test'},
    startedAt: '',
    finishedAt: '',
    cluster: {source: 'lab', name: lab.name, backend: lab.backend, clusterCIDR: lab.clusterCIDR},
    nodes: lab.nodes.map((n) => ({name: n.name, internalIP: n.ip, podCIDRs: [n.podCIDR], annotations: {}, labels: {}})),
    pods: [],
    nodeStates,
    errors: [],
  }
}

describe('preflight verdicts', () => {
  const lab = fixtureLab('col-fr', 'flannel-vxlan', 'routed', 4)
  const facts = labFacts(lab)
  const snapshot = snapshotOf(lab)
  // what each node's kernel says: a peer on another subnet is reached through that subnet's router
  const answers: Record<string, NodeProbeAnswer> = Object.fromEntries(
    lab.nodes.map((n) => {
      const gw = lab.subnets.find((s) => s.cidr === n.subnet)!.gateway!
      const routes = lab.nodes
        .filter((p) => p !== n)
        .map((p) => (p.subnet === n.subnet ? {peer: p.ip, dev: 'eth0'} : {peer: p.ip, gateway: gw, dev: 'eth0'}))
      return [
        n.name,
        {routes, kinds: {vxlan: 'yes', tun: 'yes', ipip: 'no'}, tools: {socat: true, bird: true, birdc: true}},
      ]
    }),
  )
  const verdict = (
    to: Parameters<typeof planSwitch>[3],
    extra: Partial<Parameters<typeof evaluatePreflight>[0]> = {},
  ) =>
    evaluatePreflight({
      plan: planSwitch(snapshot, facts, lab.backend, to),
      snapshot,
      facts,
      managesDaemons: true,
      answers,
      ...extra,
    })

  it("host-gw across a router: refused, every pair on different subnets listed with the kernel's next hop", () => {
    const p = verdict('flannel-host-gw')
    expect(p.ok).toBe(false)
    const across = lab.nodes.flatMap((a, i) =>
      lab.nodes
        .slice(i + 1)
        .filter((b) => b.subnet !== a.subnet)
        .map((b) => `${a.name}-${b.name}`),
    )
    expect(p.notAdjacent).toEqual(across)
    const f = p.findings.find((x) => x.code === 'HOSTGW_NOT_L2_ADJACENT')!
    expect(f.evidence).toHaveLength(across.length * 2)
    expect(f.evidence[0]).toMatch(/ip route get: via 172\.31\.\d\.1 dev eth0/)
  })

  it('vxlan needs no adjacency; udp needs its programs; ipip needs the module', () => {
    expect(verdict('flannel-vxlan').ok).toBe(true)
    const noSocat = Object.fromEntries(
      Object.entries(answers).map(([k, a]) => [k, {...a, tools: {...a.tools, socat: false}}]),
    )
    expect(verdict('flannel-udp', {answers: noSocat}).findings.map((f) => f.code)).toEqual(['DAEMON_PROGRAM_MISSING'])
    expect(verdict('flannel-udp', {managesDaemons: false}).findings.map((f) => f.code)).toEqual(['DAEMON_UNMANAGED'])
  })

  it('a node that did not answer, or was collected in part, stops the switch', () => {
    const partial = {
      ...snapshot,
      errors: [{node: 'node2', code: 'COLLECTION_PARTIAL' as const, message: 'fdb: timed out'}],
    }
    const p = evaluatePreflight({
      plan: planSwitch(partial, facts, 'flannel-vxlan', 'flannel-host-gw'),
      snapshot: partial,
      facts,
      managesDaemons: true,
      answers: {...answers, node3: 'netns x: no such network namespace'},
    })
    expect(
      p.findings.filter((f) => f.code === 'COLLECTION_PARTIAL' || f.code === 'NODE_UNREACHABLE').map((f) => f.node),
    ).toEqual(['node2', 'node3'])
    expect(p.checks.find((c) => c.name === 'collection')!.ok).toBe(false)
  })

  it("raises every code it can through the catalogue: catalogue fix, today's message, a finding as schemas/finding.schema.json says", () => {
    const validate = validatorFor('finding')
    const noTools = Object.fromEntries(
      Object.entries(answers).map(([k, a]) => [k, {...a, tools: {socat: false, bird: false, birdc: false}}]),
    )
    const partial = {
      ...snapshot,
      errors: [{node: 'node2', code: 'COLLECTION_PARTIAL' as const, message: 'fdb: timed out'}],
    }
    const refusals = [
      verdict('flannel-host-gw'),
      verdict('calico-ipip'),
      verdict('flannel-udp', {answers: noTools}),
      verdict('flannel-udp', {managesDaemons: false}),
      verdict('flannel-vxlan', {
        cannotRun: 'the lab has no flannel-vxlan backend module: it can be planned, not applied here',
      }),
      evaluatePreflight({
        plan: planSwitch(partial, facts, 'flannel-vxlan', 'flannel-vxlan'),
        snapshot: partial,
        facts,
        managesDaemons: true,
        answers: {...answers, node3: 'netns x: no such network namespace'},
      }),
    ]
    const findings = refusals.flatMap((p) => p.findings)
    expect(new Set(findings.map((f) => f.code))).toEqual(new Set(PREFLIGHT_CODES))
    for (const f of findings) {
      const entry = CATALOGUE[f.code]
      expect(entry.code, f.code).toBe(f.code)
      expect(f.severity, f.code).toBe('error')
      expect(f.fix, f.code).not.toMatch(/<[A-Za-z][A-Za-z0-9]*>/)
      // the fix is the catalogue's template, line for line
      expect(f.fix.split('\n').length, f.code).toBe(entry.fix.split('\n').length)
      expect(validate(f), `${f.code}: ${describeSchemaError(validate.errors)}`).toBe(true)
    }
    const one = (code: string) => findings.find((f) => f.code === code)!
    expect(one('BACKEND_FAMILY_CHANGE').message).toBe(
      'flannel-vxlan -> calico-ipip changes the CNI plugin (flannel -> calico: pod plumbing and pod address blocks differ), which recreates every pod; netctl switches the overlay within one CNI',
    )
    expect(one('BACKEND_FAMILY_CHANGE').fix).toBe(
      '# choose a flannel backend; moving to calico is a CNI migration (drain and recreate the pods node by node)',
    )
    expect(one('KERNEL_MODULE_MISSING').message).toBe(
      "calico-ipip needs the kernel's ipip link type, and node1, node2, node3, node4 have no ipip module (not built in, not loaded, no module file): it can be planned, not applied here",
    )
    expect(one('KERNEL_MODULE_MISSING').fix).toBe(fillTemplate(CATALOGUE.KERNEL_MODULE_MISSING.fix, {module: 'ipip'}))
    expect(one('KERNEL_MODULE_MISSING').fix.split('\n').at(-1)).toBe('modprobe ipip')
    expect(one('DAEMON_PROGRAM_MISSING')).toMatchObject({
      subject: 'socat',
      message: 'flannel-udp runs socat on every node, and node1, node2, node3, node4 cannot find it',
      fix: '# install socat on every node',
    })
    expect(one('DAEMON_UNMANAGED').message).toBe(
      'flannel-vxlan -> flannel-udp needs flannel-udp started, stopped or reconfigured on every node; netctl runs backend daemons only in its own lab',
    )
    expect(one('BACKEND_UNSUPPORTED')).toMatchObject({subject: 'flannel-vxlan', fix: CATALOGUE.BACKEND_UNSUPPORTED.fix})
    expect(one('NODE_UNREACHABLE')).toMatchObject({
      node: 'node3',
      message: 'netns x: no such network namespace',
      fix: fillTemplate(CATALOGUE.NODE_UNREACHABLE.fix, {node: 'node3'}),
    })
    expect(one('COLLECTION_PARTIAL')).toMatchObject({
      node: 'node2',
      message: 'node2: fdb: timed out',
      fix: CATALOGUE.COLLECTION_PARTIAL.fix,
    })
    expect(one('HOSTGW_NOT_L2_ADJACENT').fix).toBe(CATALOGUE.HOSTGW_NOT_L2_ADJACENT.fix)
  })
})
