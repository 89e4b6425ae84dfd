import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import type {Finding} from '../../src/model/finding.js'
import {loadSnapshot} from '../../src/model/snapshot.js'
import type {Trace} from '../../src/model/trace.js'
import {MANAGED_BY_LABEL} from '../../src/transport/kube-debug.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {kernelRouteGet} from '../analyze/kernel-oracle.js'
import {lookups} from '../analyze/trace/oracle.js'
import {BIN, netctl, netctlJson} from '../helpers/cli.js'
import {KubeApiServer} from '../helpers/kube-apiserver.js'
import {describeLab, type LabUp, ping, useLab} from '../helpers/lab.js'

// `netctl trace` and `netctl check` against the API-server emulator seeded from real labs: pods by
// name as kubectl users give them, nodes reached through debug pods whose exec runs in the lab's
// namespaces, the kernel (ping, ip route get) as the judge.

const dir = mkdtempSync(path.join(tmpdir(), 'tk-trace-kube-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** A NetworkPolicy that isolates pod-node3-2's group (the emulator labels lab pods app=pod-nodeN) for ingress. */
const ISOLATE_NODE3 = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: {name: 'node3-from-node2-only', namespace: 'default'},
  spec: {
    podSelector: {matchLabels: {app: 'pod-node3'}},
    ingress: [{from: [{podSelector: {matchExpressions: [{key: 'app', operator: 'In', values: ['pod-node2']}]}}]}],
  },
}

function validTrace(json: unknown): void {
  const validate = validatorFor('trace')
  expect(validate(json), describeSchemaError(validate.errors)).toBe(true)
}

/** The emulator serving a lab, and what a test needs of it. */
function emulatorOf(lab: {get: () => LabUp}) {
  const ctx = {server: undefined as unknown as KubeApiServer, kubeconfig: ''}
  beforeAll(async () => {
    ctx.server = await KubeApiServer.start()
    ctx.server.seedFromLab(lab.get())
    ctx.kubeconfig = ctx.server.writeKubeconfig(path.join(dir, `${lab.get().name}.kubeconfig`), {
      context: `lab-${lab.get().name}`,
    })
  })
  afterAll(async () => {
    await ctx.server?.close()
  })
  return {
    get server() {
      return ctx.server
    },
    get kubeconfig() {
      return ctx.kubeconfig
    },
    /** netctl's debug pods the API server holds now */
    debugPods: () => ctx.server.list('pods').filter((p) => p.metadata.labels?.[MANAGED_BY_LABEL] === 'netctl'),
    /** debug pods created since `since` (an index into server.created) */
    debugPodsMade: (since: number) =>
      ctx.server.created
        .slice(since)
        .filter((o) => o.kind === 'Pod' && o.metadata.labels?.[MANAGED_BY_LABEL] === 'netctl'),
  }
}

/** Poll until fn() holds; fails after the bound. */
async function eventually(fn: () => boolean, what: string, boundMs = 15_000): Promise<void> {
  const until = Date.now() + boundMs
  while (!fn()) {
    if (Date.now() > until) throw new Error(`still not true after ${boundMs / 1000}s: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * Every route decision of a trace asked of the kernel in the namespace it was
 * taken in (a node's own namespace is "host" in a trace over debug pods; a
 * pod's is the runtime's /var/run/netns path): the same device and gateway.
 */
async function routeSpotCheck(lab: LabUp, trace: Trace): Promise<{asked: number; diffs: string[]}> {
  const diffs: string[] = []
  const decisions = lookups(trace)
  for (const {hop, query} of decisions) {
    const netns = hop.netns === 'host' ? `${lab.name}.${hop.node}` : path.basename(hop.netns)
    const k = await kernelRouteGet(netns, query)
    const want = hop.lookup!
    if (k.error || k.route?.dev !== want.dev || (k.route?.gateway ?? undefined) !== want.gateway) {
      diffs.push(
        `${netns}: ${JSON.stringify(query)}: kernel ${k.error ?? `dev ${k.route?.dev} via ${k.route?.gateway ?? '-'}`}, netctl dev ${want.dev} via ${want.gateway ?? '-'}`,
      )
    }
  }
  return {asked: decisions.length, diffs}
}

const policyFindings = (findings: Finding[]): Finding[] => findings.filter((f) => f.code === 'POLICY_UNENFORCED')

/** What a trace walked, without the evidence (neighbour states move between two runs). */
const walked = (t: Trace) => ({
  disposition: t.disposition,
  hops: t.hops.map((h) => `${h.node} ${h.netns} ${h.in ?? '-'} ${h.out ?? '-'} ${h.action}`),
  back: t.returnPath?.disposition,
  hopsBack: (t.returnPath?.hops ?? []).map((h) => `${h.node} ${h.netns} ${h.in ?? '-'} ${h.out ?? '-'} ${h.action}`),
})

/**
 * What every backend must do through the emulator: trace two pods by name
 * (bare in the -n namespace, and ns/name) as a real ping agrees, route
 * decisions the kernel makes too, a clean check, and a NetworkPolicy on the
 * destination reported as unenforced only when the CNI (by backend) is flannel.
 */
function kubeTraceSuite(lab: {get: () => LabUp}, kube: ReturnType<typeof emulatorOf>, cni: 'flannel' | 'calico'): void {
  const pod = (name: string) => lab.get().pods.find((p) => p.name === name)!
  let traced: Trace

  it('SRC and DST by bare name with -n, and as ns/name: DELIVERED both ways with exit 0, as a real ping agrees; a debug pod on their two nodes only, gone after', async () => {
    const src = pod('pod-node1-1')
    const dst = pod('pod-node3-2')
    expect(await ping(src.netns, dst.ip)).toBe(true)
    const before = kube.server.created.length
    const bare = await netctlJson<Trace>([
      'trace',
      'pod-node1-1',
      'pod-node3-2',
      '-n',
      'default',
      '--kubeconfig',
      kube.kubeconfig,
    ])
    expect(bare.code, bare.stderr).toBe(0)
    validTrace(bare.json)
    expect(bare.json.disposition).toBe('DELIVERED')
    expect(bare.json.returnPath?.disposition).toBe('DELIVERED')
    expect(bare.json.src).toMatchObject({pod: 'pod-node1-1', namespace: 'default', node: 'node1', ip: src.ip})
    expect(bare.json.dst).toMatchObject({pod: 'pod-node3-2', namespace: 'default', node: 'node3', ip: dst.ip})
    expect(bare.json.findings).toEqual([])
    expect(
      kube
        .debugPodsMade(before)
        .map((p) => p.spec.nodeName)
        .sort(),
    ).toEqual(['node1', 'node3'])
    expect(kube.debugPods()).toEqual([])
    traced = bare.json

    const qualified = await netctlJson<Trace>([
      'trace',
      'default/pod-node1-1',
      'default/pod-node3-2',
      '--kubeconfig',
      kube.kubeconfig,
    ])
    expect(qualified.code, qualified.stderr).toBe(0)
    expect(walked(qualified.json)).toEqual(walked(bare.json))
  })

  it('spot check: every route decision of that trace is the one `ip route get` gives in the same namespace', async () => {
    const {asked, diffs} = await routeSpotCheck(lab.get(), traced)
    expect(diffs).toEqual([])
    // the pod's default route, the node's route to the remote podCIDR, the receiver's to its pod, and back
    expect(asked).toBeGreaterThanOrEqual(4)
  })

  it('netctl check --kubeconfig on the healthy lab: exit 0, no findings, every node collected through a debug pod, none left', async () => {
    const before = kube.server.created.length
    const r = await netctlJson(['check', '--kubeconfig', kube.kubeconfig])
    expect(r.code, r.stderr).toBe(0)
    const validate = validatorFor('check')
    expect(validate(r.json), describeSchemaError(validate.errors)).toBe(true)
    expect(r.json).toMatchObject({
      source: {kind: 'kubernetes', name: `lab-${lab.get().name}`},
      collected: 3,
      unreachable: 0,
    })
    // the one thing to say: the lab's Service that has no endpoints by design (a warning: still exit 0)
    expect(r.json.findings.map((f: Finding) => `${f.code} ${f.severity} ${f.subject}`)).toEqual([
      expect.stringMatching(/^SERVICE_NO_ENDPOINTS warning Service default\/no-endpoints/),
    ])
    expect(
      kube
        .debugPodsMade(before)
        .map((p) => p.spec.nodeName)
        .sort(),
    ).toEqual(['node1', 'node2', 'node3'])
    expect(kube.debugPods()).toEqual([])
  })

  it(`a NetworkPolicy selecting the destination: ${cni === 'flannel' ? 'POLICY_UNENFORCED in trace and check (flannel enforces none), and the ping still passes' : 'no POLICY_UNENFORCED (Calico enforces policies)'}`, async () => {
    kube.server.add(ISOLATE_NODE3)
    // what the walk is given: the policy, and the CNI the cluster runs
    const file = path.join(dir, `${lab.get().name}-policy.json`)
    expect((await netctl(['collect', '--kubeconfig', kube.kubeconfig, '--output-file', file])).code).toBe(0)
    const snap = await loadSnapshot(file)
    expect(snap.cluster.cni).toBe(cni)
    expect(snap.networkPolicies).toEqual([
      {namespace: 'default', name: ISOLATE_NODE3.metadata.name, spec: ISOLATE_NODE3.spec},
    ])
    const t = await netctlJson<Trace>(['trace', 'pod-node1-1', 'pod-node3-2', '--kubeconfig', kube.kubeconfig])
    validTrace(t.json)
    const c = await netctlJson<{findings: Finding[]}>(['check', '--kubeconfig', kube.kubeconfig])
    if (cni === 'calico') {
      expect(policyFindings(t.json.findings)).toEqual([])
      expect(policyFindings(c.json.findings)).toEqual([])
      return
    }
    // the lab's kernel has no policy engine: the flow passes, as the trace says
    expect(await ping(pod('pod-node1-1').netns, pod('pod-node3-2').ip)).toBe(true)
    expect(t.json.disposition).toBe('DELIVERED')
    expect(t.code).toBe(0)
    const [finding, ...more] = policyFindings(t.json.findings)
    expect(more).toEqual([])
    expect(finding).toMatchObject({
      severity: 'warning',
      subject: 'NetworkPolicy default/node3-from-node2-only',
      // and, as issue 16 asks, what enforcing it would do: pod-node1-1 is not app=pod-node2
      message: expect.stringMatching(
        /^NetworkPolicy default\/node3-from-node2-only selects pod default\/pod-node3-2 \(the destination\) for Ingress, but flannel enforces no NetworkPolicy: it does not filter this flow; enforced, this flow would be denied by default\/node3-from-node2-only \(closest .*does not match podSelector/,
      ),
    })
    expect(finding!.fix).toContain('kubectl -n default describe networkpolicy node3-from-node2-only')
    // the check: once, for the two pods of node3 it selects; a warning, so still exit 0
    expect(c.code).toBe(0)
    expect(policyFindings(c.json.findings).map((f) => f.message)).toEqual([
      'NetworkPolicy default/node3-from-node2-only selects 2 pods (default/pod-node3-1, default/pod-node3-2) for Ingress, but flannel enforces no NetworkPolicy: it has no effect',
    ])
    // a flow into a pod the policy does not select has nothing to say about it
    const other = await netctlJson<Trace>(['trace', 'pod-node3-2', 'pod-node1-1', '--kubeconfig', kube.kubeconfig])
    expect(policyFindings(other.json.findings)).toEqual([])
  })
}

describeLab('netctl trace and check from Kubernetes: the emulator over a 3-node flannel vxlan lab', () => {
  const lab = useLab('tk', ['--nodes', '3', '--backend', 'flannel-vxlan'])
  const kube = emulatorOf(lab)
  kubeTraceSuite(lab, kube, 'flannel')

  it('a pod that does not exist: exit 2 in one line, before any debug pod is made; a name in another namespace says where it is', async () => {
    const before = kube.server.created.length
    const cluster = `lab-${lab.get().name}`
    for (const [args, line] of [
      [['pod-node1-1', 'checkout-7f9c4'], `no pod default/checkout-7f9c4 in cluster ${cluster}`],
      [
        ['pod-node1-1', 'pod-node3-2', '-n', 'shop'],
        `no pod shop/pod-node1-1 in cluster ${cluster} (pod-node1-1 is in namespace default)`,
      ],
      [
        ['pod-node1-1', 'kube-system/pod-node3-2'],
        `no pod kube-system/pod-node3-2 in cluster ${cluster} (pod-node3-2 is in namespace default)`,
      ],
    ] as const) {
      const r = await netctl(['trace', ...args, '--kubeconfig', kube.kubeconfig])
      expect(r.code).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).toBe(`netctl: ${line}\n`)
    }
    expect(kube.debugPodsMade(before)).toEqual([])
  })

  it("Forbidden pods/exec: SRC's and DST's nodes unreachable with the verb and resource named, exit 3; the debug pods made are deleted", async () => {
    const before = kube.server.created.length
    kube.server.deny = [{verb: 'create', resource: 'pods/exec'}]
    try {
      const r = await netctlJson<Trace>(['trace', 'pod-node1-1', 'pod-node3-2', '--kubeconfig', kube.kubeconfig])
      expect(r.code).toBe(3)
      validTrace(r.json)
      const unreachable = r.json.findings.filter((f) => f.code === 'NODE_UNREACHABLE')
      expect(unreachable.map((f) => f.node).sort()).toEqual(['node1', 'node3'])
      for (const f of unreachable)
        expect(f.message).toMatch(
          /^debug pod on node node\d: Forbidden: user "[^"]+" may not create pods\/exec "netctl-debug-\S+" in namespace "default"; RBAC must allow verb "create" on resource "pods\/exec"/,
        )
    } finally {
      kube.server.deny = []
    }
    expect(
      kube
        .debugPodsMade(before)
        .map((p) => p.spec.nodeName)
        .sort(),
    ).toEqual(['node1', 'node3'])
    expect(kube.debugPods()).toEqual([])
  })

  it(
    'SIGINT in the middle of a trace: the debug pods are deleted, and netctl dies of that signal',
    {timeout: 180_000},
    async () => {
      // the emulator's kubelet takes a minute: the pods stay Pending while netctl waits for them
      kube.server.podStartMs = 60_000
      try {
        const {NODE_ENV: _test, ...env} = process.env
        const child = spawn(
          process.execPath,
          [BIN, 'trace', 'pod-node1-1', 'pod-node3-2', '--kubeconfig', kube.kubeconfig, '--timeout', '120'],
          {env, stdio: 'ignore'},
        )
        const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
          child.once('exit', (code, sig) => resolve(sig ?? code)),
        )
        try {
          await eventually(() => kube.debugPods().length === 2, 'a debug pod on the nodes of SRC and DST', 60_000)
          child.kill('SIGINT')
          expect(await exited).toBe('SIGINT')
        } finally {
          // never leave the run behind when an expectation failed
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
        }
        await eventually(() => kube.debugPods().length === 0, 'debug pods deleted after SIGINT')
      } finally {
        kube.server.podStartMs = 100
      }
    },
  )
})

describeLab('netctl trace and check from Kubernetes: the emulator over a 3-node calico-bgp lab', () => {
  const lab = useLab('tk', ['--nodes', '3', '--backend', 'calico-bgp'])
  const kube = emulatorOf(lab)
  kubeTraceSuite(lab, kube, 'calico')
})
