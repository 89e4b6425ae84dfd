import {spawn} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import type {Inventory} from '../../src/model/inventory.js'
import type {Neighbour} from '../../src/model/node-state.js'
import {loadSnapshot, type Snapshot} from '../../src/model/snapshot.js'
import {MANAGED_BY_LABEL} from '../../src/transport/kube-debug.js'
import {validatorFor} from '../../src/util/schema.js'
import {BIN, netctl} from '../helpers/cli.js'
import {KubeApiServer} from '../helpers/kube-apiserver.js'
import {describeLab, ipJson, useLab} from '../helpers/lab.js'

const dir = mkdtempSync(path.join(tmpdir(), 'netctl-collect-kube-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

let runs = 0
/** `netctl collect ARGS -o FILE` as a user runs it: exit 0, nothing printed, a file that validates. */
async function collectTo(args: string[], env?: NodeJS.ProcessEnv): Promise<Snapshot> {
  const out = path.join(dir, `snap-${++runs}.json`)
  const r = await netctl(['collect', ...args, '--output-file', out], env ? {env} : {})
  expect(r.code, r.stderr).toBe(0)
  expect(r.stdout).toBe('')
  expect(r.stderr).toBe('')
  const validate = validatorFor('snapshot')
  expect(validate(JSON.parse(readFileSync(out, 'utf8'))), JSON.stringify(validate.errors)).toBe(true)
  return loadSnapshot(out)
}

/** A neighbour as two reads a moment apart agree on: a learned entry may go REACHABLE → STALE in between. */
const neighbourKey = (n: Neighbour): string =>
  `${n.dst} dev ${n.dev} lladdr ${n.lladdr ?? '-'}${n.state.includes('PERMANENT') || n.state.includes('NOARP') ? ` ${n.state.join(',')}` : ''}`

/** Poll until fn() holds (the API removes pods after their grace period); fails after the bound. */
async function eventually(fn: () => boolean, what: string, boundMs = 15_000): Promise<void> {
  const until = Date.now() + boundMs
  while (!fn()) {
    if (Date.now() > until) throw new Error(`still not true after ${boundMs / 1000}s: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * Wait until no IPv6 address of the lab is tentative: a fresh lab's link-local
 * addresses (and their local routes) appear only once duplicate address
 * detection is over, so two reads straddling it would differ.
 */
async function settled(namespaces: string[]): Promise<void> {
  const until = Date.now() + 15_000
  for (const ns of namespaces) {
    while ((await ipJson<unknown[]>(ns, ['-6', 'addr', 'show', 'tentative'])).length > 0) {
      if (Date.now() > until) throw new Error(`${ns}: IPv6 addresses still tentative after 15s`)
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}

const POLICY = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: {name: 'web-from-frontend', namespace: 'default'},
  spec: {
    podSelector: {matchLabels: {app: 'pod-node1'}},
    policyTypes: ['Ingress'],
    ingress: [{from: [{podSelector: {matchLabels: {app: 'pod-node2'}}}], ports: [{protocol: 'TCP', port: 8080}]}],
  },
}

describeLab('netctl collect from Kubernetes: the API-server emulator over a 3-node flannel vxlan lab', () => {
  const lab = useLab('kw', ['--nodes', '3', '--backend', 'flannel-vxlan', '--ssh'])
  let server: KubeApiServer
  let kubeconfig: string
  let kube: Snapshot
  let fromLab: Snapshot
  let createdBefore: number
  let createdByRun: Array<Record<string, any>>
  const debugPods = (): Array<Record<string, any>> =>
    server.list('pods').filter((p) => p.metadata.labels?.[MANAGED_BY_LABEL] === 'netctl')

  beforeAll(async () => {
    server = await KubeApiServer.start()
    server.seedFromLab(lab.get())
    server.add(POLICY)
    kubeconfig = server.writeKubeconfig(path.join(dir, 'config'), {context: `lab-${lab.get().name}`})
    await settled([...lab.get().nodes.map((n) => n.netns), ...lab.get().pods.map((p) => p.netns)])
    createdBefore = server.created.length
    kube = await collectTo(['--kubeconfig', kubeconfig])
    createdByRun = server.created.slice(createdBefore)
    fromLab = await collectTo(['--lab', lab.get().name])
  })
  afterAll(async () => {
    await server?.close()
  })

  it('collects every node completely, as a Kubernetes cluster whose backend was detected', () => {
    expect(kube.errors).toEqual([])
    expect(Object.keys(kube.nodeStates).sort()).toEqual(
      lab
        .get()
        .nodes.map((n) => n.name)
        .sort(),
    )
    expect(kube.cluster).toMatchObject({
      source: 'kubernetes',
      backend: 'flannel-vxlan',
      clusterCIDR: fromLab.cluster.clusterCIDR,
    })
    expect(kube.nodes.map((n) => [n.name, n.internalIP, n.podCIDRs])).toEqual(
      fromLab.nodes.map((n) => [n.name, n.internalIP, n.podCIDRs]),
    )
    // the API's pods, with the labels a NetworkPolicy selects them by, and the policy itself
    expect(kube.pods.map((p) => `${p.namespace}/${p.name} ${p.ip}`).sort()).toEqual(
      lab
        .get()
        .pods.map((p) => `${p.namespace}/${p.name} ${p.ip}`)
        .sort(),
    )
    expect(kube.pods.every((p) => p.labels?.app !== undefined && p.netns === undefined)).toBe(true)
    expect(kube.networkPolicies).toEqual([{namespace: 'default', name: POLICY.metadata.name, spec: POLICY.spec}])
  })

  it('node routes, neighbours and FDB are the ones netctl collect --lab reads from the namespaces', () => {
    for (const node of lab.get().nodes) {
      const k = kube.nodeStates[node.name]!
      const l = fromLab.nodeStates[node.name]!
      expect(k.routes).toEqual(l.routes)
      expect(k.fdb).toEqual(l.fdb)
      expect(k.neighbours.map(neighbourKey).sort()).toEqual(l.neighbours.map(neighbourKey).sort())
      expect(k.links.map((x) => x.name)).toEqual(l.links.map((x) => x.name))
      expect(k.routes.length).toBeGreaterThan(0)
    }
  })

  it("every pod's own namespace, found through the container runtime: its addresses and routes are the kernel's", async () => {
    for (const pod of lab.get().pods) {
      const state = kube.nodeStates[pod.node]!.pods.find((p) => p.name === pod.name && p.namespace === pod.namespace)!
      expect(state.sections!.runtime).toEqual({status: 'ok'})
      expect(state.sections!.netns).toEqual({status: 'ok'})
      // the sandbox's network namespace as the runtime names it: the lab's pod namespace
      expect(state.netns).toBe(`/var/run/netns/${pod.netns}`)
      const kernel = await ipJson<Array<{ifname: string; addr_info: Array<{local: string}>}>>(pod.netns, [
        'addr',
        'show',
      ])
      expect(state.addresses.map((a) => `${a.dev} ${a.local}`).sort()).toEqual(
        kernel.flatMap((l) => l.addr_info.map((a) => `${l.ifname} ${a.local}`)).sort(),
      )
      expect(state.addresses.some((a) => a.local === pod.ip)).toBe(true)
      const lab = fromLab.nodeStates[pod.node]!.pods.find((p) => p.name === pod.name)!
      expect(state.routes).toEqual(lab.routes)
    }
  })

  it('one debug pod per node for the whole run, one exec each, all deleted at the end', () => {
    const made = createdByRun.filter((o) => o.kind === 'Pod' && o.metadata.labels?.[MANAGED_BY_LABEL] === 'netctl')
    expect(made.map((p) => p.spec.nodeName).sort()).toEqual(
      lab
        .get()
        .nodes.map((n) => n.name)
        .sort(),
    )
    const execs = server.requests.filter(
      (q) => q.resource === 'pods/exec' && made.some((p) => q.path.includes(`/pods/${p.metadata.name}/exec`)),
    )
    expect(execs.length).toBe(made.length)
    expect(debugPods()).toEqual([])
  })

  it('--via ssh to an ssh-config alias per node: the same node state; pods known only by name need crictl, which these nodes lack', async () => {
    // each node as an alias of ~/.ssh/config, reached the way the lab's inventory says (a ProxyCommand into its namespace)
    const inv = parse(readFileSync(lab.get().inventory, 'utf8')) as Inventory
    const home = path.join(dir, 'home')
    mkdirSync(path.join(home, '.ssh'), {recursive: true})
    const config = inv.nodes.map(
      (n) =>
        `Host ${n.name}.kw.lab\n  HostName ${n.access.ssh!.host}\n  ProxyCommand ${n.access.ssh!.proxyCommand}\n  UserKnownHostsFile ${n.access.ssh!.knownHostsFile}\n`,
    )
    writeFileSync(path.join(home, '.ssh', 'config'), config.join(''))
    const before = server.created.length
    const snap = await collectTo(
      [
        '--kubeconfig',
        kubeconfig,
        '--ssh-host-template',
        '{name}.kw.lab',
        '--ssh-user',
        'root',
        '--ssh-identity',
        inv.nodes[0]!.access.ssh!.identityFile!,
      ],
      {HOME: home},
    )
    expect(server.created.length).toBe(before)
    expect(snap.cluster).toMatchObject({source: 'kubernetes', backend: 'flannel-vxlan'})
    expect(snap.errors).toEqual([])
    for (const node of lab.get().nodes) {
      expect(snap.nodeStates[node.name]!.routes).toEqual(fromLab.nodeStates[node.name]!.routes)
      for (const pod of snap.nodeStates[node.name]!.pods) {
        expect(pod.sections!.netns).toEqual({status: 'absent', message: expect.stringMatching(/^crictl not installed/)})
        expect(pod.sections!.runtime!.message).toMatch(/crictl/)
      }
    }
  })

  it('Forbidden on pods/exec is one line naming the verb and resource; the debug pods are deleted', async () => {
    server.deny = [{verb: 'create', resource: 'pods/exec'}]
    try {
      const r = await netctl(['collect', '--kubeconfig', kubeconfig, '--output-file', path.join(dir, 'forbidden.json')])
      expect(r.code).toBe(3)
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
      expect(r.stderr).toMatch(
        /^netctl: no node could be collected \(3 unreachable\): node\d: debug pod on node node\d: Forbidden: user "[^"]+" may not create pods\/exec "netctl-debug-\S+" in namespace "default"; RBAC must allow verb "create" on resource "pods\/exec" \(API group ""\)\n$/,
      )
    } finally {
      server.deny = []
    }
    expect(debugPods()).toEqual([])
  })

  it('pods that do not start within --timeout: exit 3 in one line saying where they stand, and they are deleted', async () => {
    // the emulator's kubelet takes a minute: the pods stay Pending past the 2 s budget of each node
    server.podStartMs = 60_000
    try {
      const r = await netctl([
        'collect',
        '--kubeconfig',
        kubeconfig,
        '--timeout',
        '2',
        '--output-file',
        path.join(dir, 'slow.json'),
      ])
      expect(r.code).toBe(3)
      expect(r.stderr).toMatch(
        /^netctl: no node could be collected \(3 unreachable\): node\d: debug pod on node node\d: pod default\/netctl-debug-\S+ not Running after [\d.]+s: Pending\b[^\n]*\n$/,
      )
    } finally {
      server.podStartMs = 100
    }
    await eventually(() => debugPods().length === 0, 'the pods that never started are deleted')
  })

  it(
    'SIGTERM or SIGINT in the middle of a run deletes the debug pods, and netctl dies of that signal',
    {timeout: 180_000},
    async () => {
      server.podStartMs = 60_000
      try {
        for (const signal of ['SIGTERM', 'SIGINT'] as const) {
          const {NODE_ENV: _test, ...env} = process.env
          const child = spawn(
            process.execPath,
            [
              BIN,
              'collect',
              '--kubeconfig',
              kubeconfig,
              '--timeout',
              '120',
              '--output-file',
              path.join(dir, 'killed.json'),
            ],
            {env, stdio: 'ignore'},
          )
          const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
            child.once('exit', (code, sig) => resolve(sig ?? code)),
          )
          try {
            // a CLI start and three pod creations: generous on a loaded machine
            await eventually(() => debugPods().length === lab.get().nodes.length, 'a debug pod on every node', 60_000)
            child.kill(signal)
            expect(await exited).toBe(signal)
          } finally {
            // never leave the run behind when an expectation failed
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
          }
          await eventually(() => debugPods().length === 0, `debug pods deleted after ${signal}`)
        }
      } finally {
        server.podStartMs = 100
      }
    },
  )
})

describe('an API server that cannot be reached', () => {
  it('exit 3 and one line naming the server and why, also with --json', async () => {
    // a port nothing listens on: bound, then closed
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as {port: number}).port
        srv.close(() => resolve(p))
      })
    })
    const file = path.join(dir, 'unreachable.yaml')
    const server = `https://127.0.0.1:${port}`
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {server: '${server}', insecure-skip-tls-verify: true}\nusers:\n- name: me\n  user: {token: abc}\ncontexts:\n- name: gone\n  context: {cluster: gone, user: me}\ncurrent-context: gone\n`,
    )
    const r = await netctl(['collect', '--kubeconfig', file, '--output-file', path.join(dir, 'never.json')])
    expect(r.code).toBe(3)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe(
      `netctl: cannot reach the Kubernetes API server at ${server} (context gone): connection refused\n`,
    )
    const j = await netctl(['collect', '--kubeconfig', file, '--json'])
    expect(j.code).toBe(3)
    expect(JSON.parse(j.stdout)).toEqual({
      error: {
        code: 'CLUSTER_UNREACHABLE',
        message: `cannot reach the Kubernetes API server at ${server} (context gone): connection refused`,
        exitCode: 3,
      },
    })
  })
})
