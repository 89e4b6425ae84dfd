import {spawn} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import type {Inventory} from '../../src/cluster/inventory-types.js'
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
  const r = await netctl(['collect', ...args, '-o', out], env ? {env} : {})
  expect(r.code, r.stderr).toBe(0)
  expect(r.stdout).toBe('')
  expect(r.stderr).toBe('')
  const validate = validatorFor('snapshot')
  expect(validate(JSON.parse(readFileSync(out, 'utf8'))), JSON.stringify(validate.errors)).toBe(true)
  return loadSnapshot(out)
}

/** A neighbour as two reads a moment apart agree on: a learned entry may go REACHABLE → STALE in between. */
const neighbourKey = (n: Neighbour): string => `${n.dst} dev ${n.dev} lladdr ${n.lladdr ?? '-'}${n.state.includes('PERMANENT') || n.state.includes('NOARP') ? ` ${n.state.join(',')}` : ''}`

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
  spec: {podSelector: {matchLabels: {app: 'pod-node1'}}, policyTypes: ['Ingress'], ingress: [{from: [{podSelector: {matchLabels: {app: 'pod-node2'}}}], ports: [{protocol: 'TCP', port: 8080}]}]},
}

describeLab('netctl collect from Kubernetes: the API-server emulator over a 3-node flannel vxlan lab', () => {
  const lab = useLab('kw', ['--nodes', '3', '--backend', 'flannel-vxlan', '--ssh'])
  let server: KubeApiServer
  let kubeconfig: string
  let kube: Snapshot
  let fromLab: Snapshot
  let createdBefore: number
  let createdByRun: Array<Record<string, any>>
  const debugPods = (): Array<Record<string, any>> => server.list('pods').filter((p) => p.metadata.labels?.[MANAGED_BY_LABEL] === 'netctl')

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
    expect(Object.keys(kube.nodeStates).sort()).toEqual(lab.get().nodes.map((n) => n.name).sort())
    expect(kube.cluster).toMatchObject({source: 'kubernetes', backend: 'flannel-vxlan', clusterCIDR: fromLab.cluster.clusterCIDR})
    expect(kube.nodes.map((n) => [n.name, n.internalIP, n.podCIDRs])).toEqual(fromLab.nodes.map((n) => [n.name, n.internalIP, n.podCIDRs]))
    // the API's pods, with the labels a NetworkPolicy selects them by, and the policy itself
    expect(kube.pods.map((p) => `${p.namespace}/${p.name} ${p.ip}`).sort()).toEqual(lab.get().pods.map((p) => `${p.namespace}/${p.name} ${p.ip}`).sort())
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
      const kernel = await ipJson<Array<{ifname: string; addr_info: Array<{local: string}>}>>(pod.netns, ['addr', 'show'])
      expect(state.addresses.map((a) => `${a.dev} ${a.local}`).sort()).toEqual(kernel.flatMap((l) => l.addr_info.map((a) => `${l.ifname} ${a.local}`)).sort())
      expect(state.addresses.some((a) => a.local === pod.ip)).toBe(true)
      const lab = fromLab.nodeStates[pod.node]!.pods.find((p) => p.name === pod.name)!
      expect(state.routes).toEqual(lab.routes)
    }
  })

  it('one debug pod per node for the whole run, one exec each, all deleted at the end', () => {
    const made = createdByRun.filter((o) => o.kind === 'Pod' && o.metadata.labels?.[MANAGED_BY_LABEL] === 'netctl')
    expect(made.map((p) => p.spec.nodeName).sort()).toEqual(lab.get().nodes.map((n) => n.name).sort())
    const execs = server.requests.filter((q) => q.resource === 'pods/exec' && made.some((p) => q.path.includes(`/pods/${p.metadata.name}/exec`)))
    expect(execs.length).toBe(made.length)
    expect(debugPods()).toEqual([])
  })
})
