/**
 * Debug pods against an API server that will not play along: nodes whose
 * kubelet is down (a graceful deletion is never confirmed there), and a
 * namespace whose Pod Security level refuses privileged pods. No lab needed:
 * the emulator's nodes come from a lab inventory that is never brought up, and
 * nothing here ever execs into a pod.
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, afterEach, beforeAll, describe, expect, it, vi} from 'vitest'
import {stringify} from 'yaml'

import {KubeApi} from '../../src/cluster/kube-api.js'
import {labInventory} from '../../src/lab/inventory.js'
import {planLab} from '../../src/lab/topology.js'
import {KubeDebugTransport, MANAGED_BY_LABEL} from '../../src/transport/kube-debug.js'
import {BIN, netctl, netctlJson} from '../helpers/cli.js'
import {KubeApiServer} from '../helpers/kube-apiserver.js'

const dir = mkdtempSync(path.join(tmpdir(), 'netctl-kube-refusals-'))
let server: KubeApiServer
let kubeconfig: string
const NODES = ['node1', 'node2', 'node3']

beforeAll(async () => {
  const plan = planLab(
    {
      name: 'tpkref',
      nodes: NODES.length,
      podsPerNode: 0,
      backend: 'flannel-vxlan',
      topology: 'flat',
      routeReflectors: 1,
      ssh: false,
    },
    dir,
  )
  const inventory = path.join(dir, 'inventory.yaml')
  writeFileSync(inventory, stringify(labInventory(plan)))
  server = await KubeApiServer.start()
  server.seedFromLab(inventory)
  kubeconfig = server.writeKubeconfig(path.join(dir, 'config'))
})
afterAll(async () => {
  await server?.close()
  rmSync(dir, {recursive: true, force: true})
})

const debugPods = (): Array<Record<string, any>> =>
  server.list('pods').filter((p) => p.metadata.labels?.[MANAGED_BY_LABEL] === 'netctl')

async function eventually(fn: () => boolean, what: string, boundMs = 15_000): Promise<void> {
  const until = Date.now() + boundMs
  while (!fn()) {
    if (Date.now() > until) throw new Error(`still not true after ${boundMs / 1000}s: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('debug pods on nodes whose kubelet is down', () => {
  it('the emulator keeps a pod there Terminating while a grace period is pending, as a real API server does', async () => {
    server.add({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {name: 'tp-down'},
      status: {conditions: [{type: 'Ready', status: 'True'}]},
    })
    server.stopKubelet('tp-down')
    const [pod] = server.add({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {name: 'tp-graceful', namespace: 'default'},
      spec: {nodeName: 'tp-down', containers: [{name: 'c', image: 'busybox'}]},
      status: {phase: 'Pending'},
    })
    const api = await KubeApi.connect({kubeconfig})
    await api.delete(`/api/v1/namespaces/default/pods/${pod!.metadata.name}`, {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      gracePeriodSeconds: 1,
    })
    await new Promise((r) => setTimeout(r, 1500))
    expect(server.get('pods', 'default', 'tp-graceful')?.metadata.deletionTimestamp).toBeDefined()
    await api.delete('/api/v1/namespaces/default/pods/tp-graceful', {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      gracePeriodSeconds: 0,
    })
    await eventually(
      () => server.get('pods', 'default', 'tp-graceful') === undefined,
      'grace period 0 removes it at once',
    )
  })

  it('SIGINT during collect leaves no debug pod behind, and netctl dies of it', {timeout: 90_000}, async () => {
    for (const n of NODES) server.stopKubelet(n)
    expect(
      server
        .list('nodes')
        .every((n) =>
          n.status?.conditions?.some((c: {type: string; status: string}) => c.type === 'Ready' && c.status !== 'True'),
        ),
    ).toBe(true)
    const {NODE_ENV: _test, ...env} = process.env
    const child = spawn(
      process.execPath,
      [BIN, 'collect', '--kubeconfig', kubeconfig, '--timeout', '120', '--output-file', path.join(dir, 'killed.json')],
      {env, stdio: ['ignore', 'ignore', 'pipe']},
    )
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.once('exit', (code, sig) => resolve(sig ?? code)),
    )
    try {
      const nodes = server.list('nodes').length
      await eventually(
        () => debugPods().length === nodes || child.exitCode !== null,
        'a debug pod on every node',
        60_000,
      )
      expect(child.exitCode, stderr).toBeNull()
      child.kill('SIGINT')
      expect(await exited).toBe('SIGINT')
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    await eventually(() => debugPods().length === 0, 'no debug pod left after SIGINT', 5000)
    expect(stderr).toBe('')
  })

  describe('closing a transport', () => {
    let written: string[]
    afterEach(() => {
      vi.restoreAllMocks()
      server.deny = []
    })
    const spyStderr = (): void => {
      written = []
      vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
        written.push(String(chunk))
        return true
      })
    }

    it('deletes the pod of a node whose kubelet stopped after it started', async () => {
      server.add({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {name: 'tp-lost'},
        status: {conditions: [{type: 'Ready', status: 'True'}]},
      })
      const t = new KubeDebugTransport({kube: {kubeconfig}, node: 'tp-lost'})
      await t.start()
      const {namespace, name} = (await t.pod())!
      server.stopKubelet('tp-lost')
      const began = Date.now()
      await t.close()
      expect(server.get('pods', namespace, name)).toBeUndefined()
      expect(Date.now() - began).toBeLessThan(5000)
    })

    it('names a pod it could not delete, and the command that removes it later', async () => {
      server.add({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {name: 'tp-kept'},
        status: {conditions: [{type: 'Ready', status: 'True'}]},
      })
      const t = new KubeDebugTransport({kube: {kubeconfig}, node: 'tp-kept'})
      await t.start()
      const {namespace, name} = (await t.pod())!
      server.deny = [{verb: 'delete', resource: 'pods'}]
      spyStderr()
      await t.close()
      vi.restoreAllMocks()
      expect(written.join('')).toMatch(
        new RegExp(
          `^netctl: could not delete debug pod ${namespace}/${name} \\(Forbidden: [^\\n]*\\); remove it with: netctl debug cleanup --namespace ${namespace}\\n$`,
        ),
      )
      server.deny = []
      await netctl(['debug', 'cleanup', '--kubeconfig', kubeconfig])
      expect(server.get('pods', namespace, name)).toBeUndefined()
    })
  })
})

describe('a namespace whose Pod Security level refuses privileged pods', () => {
  const setLevel = (ns: string, level: string | undefined): void => {
    if (!server.get('namespaces', '', ns)) server.add({apiVersion: 'v1', kind: 'Namespace', metadata: {name: ns}})
    server.update('namespaces', '', ns, (n) => {
      n.metadata.labels ??= {}
      if (level === undefined) delete n.metadata.labels['pod-security.kubernetes.io/enforce']
      else n.metadata.labels['pod-security.kubernetes.io/enforce'] = level
    })
  }
  afterAll(() => setLevel('default', undefined))

  it.each([
    ['collect', 'baseline', ['collect', '--output-file', path.join(dir, 'psa.json')]],
    ['check', 'restricted', ['check']],
  ])(
    '%s (%s): one line with the fix, exit 3, and no debug pod tried on any other node',
    {timeout: 60_000},
    async (_cmd, level, args) => {
      setLevel('default', level)
      const posts = (): number => server.requests.filter((q) => q.method === 'POST' && q.resource === 'pods').length
      const before = posts()
      const r = await netctl([...args, '--kubeconfig', kubeconfig])
      expect(r.code).toBe(3)
      expect(r.stdout).toBe('')
      const checks =
        level === 'baseline'
          ? 'host namespaces, privileged'
          : 'host namespaces, privileged, allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile'
      expect(r.stderr).toBe(
        `netctl: namespace "default" refuses netctl's privileged debug pod: PodSecurity "${level}:latest" forbids ${checks}; ` +
          'allow it with kubectl label namespace default pod-security.kubernetes.io/enforce=privileged, or put the debug pods in a namespace that does with --debug-namespace NAME\n',
      )
      // the first refusal stops the run: one pod was asked for, none made
      expect(posts() - before).toBe(1)
      expect(debugPods()).toEqual([])
    },
  )

  it('--json: the same line as an error object with its own code', {timeout: 60_000}, async () => {
    setLevel('default', 'baseline')
    const r = await netctlJson(['collect', '--kubeconfig', kubeconfig])
    expect(r.code).toBe(3)
    expect(r.json).toEqual({
      error: {
        code: 'CLUSTER_REFUSED',
        message: expect.stringMatching(
          /^namespace "default" refuses netctl's privileged debug pod: PodSecurity "baseline:latest" forbids /,
        ),
        exitCode: 3,
      },
    })
  })

  it('--debug-namespace with a namespace that allows them: the pods are made there', {timeout: 60_000}, async () => {
    setLevel('default', 'baseline')
    setLevel('tp-debug', 'privileged')
    const before = server.created.length
    // the kubelets are down: the pods are made, never start, and are deleted at the timeout
    const r = await netctl([
      'collect',
      '--kubeconfig',
      kubeconfig,
      '--debug-namespace',
      'tp-debug',
      '--timeout',
      '2',
      '--output-file',
      path.join(dir, 'psa-ns.json'),
    ])
    expect(r.code).toBe(3)
    const made = server.created.slice(before).filter((o) => o.kind === 'Pod')
    // every node of the cluster (the ones the tests above added too) got its pod in tp-debug
    expect(made.length).toBe(server.list('nodes').length)
    expect(made.every((p) => p.metadata.namespace === 'tp-debug')).toBe(true)
    expect(NODES.every((n) => made.some((p) => p.spec.nodeName === n))).toBe(true)
    await eventually(() => debugPods().length === 0, 'the pods that never started are deleted')
  })
})
