import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {runChecks} from '../../src/analyze/checks/index.js'
import {parseInventory} from '../../src/cluster/inventory.js'
import {KubeCluster} from '../../src/cluster/kube.js'
import {KubeApi} from '../../src/cluster/kube-api.js'
import {snapshotOf} from '../../src/collect/collect.js'
import {NetctlError} from '../../src/errors.js'
import {labInventory} from '../../src/lab/inventory.js'
import {planLab} from '../../src/lab/topology.js'
import {LAB_BACKENDS} from '../../src/lab/types.js'
import type {Inventory} from '../../src/model/inventory.js'
import {parseSnapshot, type Snapshot} from '../../src/model/snapshot.js'
import {traceSnapshotFile} from '../../src/services/trace.js'
import {validatorFor} from '../../src/util/schema.js'
import {netctl} from '../helpers/cli.js'
import {KubeApiServer} from '../helpers/kube-apiserver.js'
import {seededRandom} from '../helpers/random.js'

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!

const SEED = Number(process.env.NETCTL_PROPERTY_SEED ?? 20261204)

/** What `collect` writes for an inventory whose nodes were all unreachable (the node states do not matter here: the cluster's facts do). */
function collectedSnapshot(inv: Inventory): Snapshot {
  return snapshotOf(
    inv,
    inv.nodes.map((n) => ({
      node: n.name,
      ms: 1,
      errors: [{node: n.name, code: 'NODE_UNREACHABLE' as const, message: 'connection refused'}],
    })),
    {startedAt: '2026-12-04T10:00:00.000Z', finishedAt: '2026-12-04T10:00:01.000Z', version: '0.0.0-test'},
  )
}

/** It validates against the schema, loads as `--snapshot` loads it, and check and trace run over it. */
function loadsEverywhere(s: Snapshot, what: string): Snapshot {
  const validate = validatorFor('snapshot')
  expect(validate(JSON.parse(JSON.stringify(s))), `${what}: ${JSON.stringify(validate.errors?.[0])}`).toBe(true)
  const loaded = parseSnapshot(JSON.stringify(s), what)
  expect(() => runChecks(loaded), what).not.toThrow()
  const [a, b] = loaded.pods
  if (a && b) {
    try {
      traceSnapshotFile(loaded, {
        src: `${a.namespace}/${a.name}`,
        dst: `${b.namespace}/${b.name}`,
        protocol: 'icmp',
        size: 84,
        df: false,
      })
    } catch (error) {
      // a refusal a user can read is fine (one line, an exit code); a crash is not
      expect(error, `${what}: ${(error as Error).stack}`).toBeInstanceOf(NetctlError)
    }
  }
  return loaded
}

/** The podCIDR fields of a Node object, as kubelets and controllers leave them. */
const NODE_SPECS: Array<{what: string; spec: (i: number) => Record<string, unknown>}> = [
  {what: 'podCIDR and podCIDRs', spec: (i) => ({podCIDR: `10.244.${i}.0/24`, podCIDRs: [`10.244.${i}.0/24`]})},
  {what: 'no podCIDR (Calico IPAM)', spec: () => ({})},
  {what: 'empty podCIDR', spec: () => ({podCIDR: ''})},
  {what: 'podCIDR only', spec: (i) => ({podCIDR: `10.244.${i}.0/24`})},
  {
    what: 'dual-stack, IPv4 first',
    spec: (i) => ({podCIDR: `10.244.${i}.0/24`, podCIDRs: [`10.244.${i}.0/24`, `fd00:10:244:${i}::/64`]}),
  },
  {
    what: 'dual-stack, IPv6 first',
    spec: (i) => ({podCIDR: `fd00:10:244:${i}::/64`, podCIDRs: [`fd00:10:244:${i}::/64`, `10.244.${i}.0/24`]}),
  },
  {what: 'IPv6 only', spec: (i) => ({podCIDR: `fd00:10:244:${i}::/64`, podCIDRs: [`fd00:10:244:${i}::/64`]})},
]

describe('whatever collect writes loads in check and trace', () => {
  let dir: string
  const servers: KubeApiServer[] = []
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'netctl-sources-'))
  })
  afterAll(async () => {
    for (const s of servers) await s.close()
    rmSync(dir, {recursive: true, force: true})
  })

  it('a lab of every backend', () => {
    for (const backend of LAB_BACKENDS) {
      const plan = planLab(
        {name: 'an-src', nodes: 3, podsPerNode: 1, backend, topology: 'flat', routeReflectors: 1, ssh: false},
        dir,
      )
      loadsEverywhere(collectedSnapshot(labInventory(plan)), `lab ${backend}`)
    }
  })

  it('inventory files with and without the optional fields, dual-stack ranges included', () => {
    const r = seededRandom(SEED)
    for (let k = 0; k < 40; k++) {
      const nodes = Array.from({length: 1 + Math.floor(r() * 4)}, (_, i) => ({
        name: `n${i}`,
        internalIP: `10.0.0.${i + 1}`,
        ...(r() < 0.3 ? {externalIP: `203.0.113.${i + 1}`} : {}),
        podCIDR: `10.244.${i}.0/24`,
        ...(r() < 0.4 ? {podCIDRs: r() < 0.5 ? [`10.244.${i}.0/24`, `fd00::${i}:0/112`] : [`fd00::${i}:0/112`]} : {}),
        access: {ssh: {host: `n${i}`}},
        ...(r() < 0.5 ? {annotations: {'flannel.alpha.coreos.com/public-ip': `10.0.0.${i + 1}`}} : {}),
      }))
      const backend = pick(r, ['flannel-vxlan', 'calico-bgp', 'unknown', 'weave'])
      const doc = {
        apiVersion: 'netctl.dev/v1',
        kind: 'Inventory',
        cluster: {
          name: 'file',
          backend,
          clusterCIDR: '10.244.0.0/16',
          source: 'file',
          ...(r() < 0.5 ? {cni: 'unknown'} : {}),
        },
        nodes,
        pods: nodes.map((n, i) => ({name: `p${i}`, namespace: 'default', node: n.name, ip: `10.244.${i}.2`})),
      }
      const inv = parseInventory(stringify(doc), 'inv.yaml')
      const s = loadsEverywhere(collectedSnapshot(inv), `inventory #${k}`)
      for (const [i, n] of doc.nodes.entries())
        expect(s.nodes[i]!.podCIDRs).toEqual([...new Set([n.podCIDR, ...(n.podCIDRs ?? [])])])
    }
  })

  it.each(['flannel', 'calico', 'none'])(
    'Kubernetes objects with and without podCIDR(s), dual-stack, the CNI %s',
    async (cni) => {
      const server = await KubeApiServer.start()
      servers.push(server)
      server.addFixture('workloads')
      if (cni !== 'none') server.addFixture(cni)
      const api = await KubeApi.connect({kubeconfig: server.writeKubeconfig(path.join(dir, `${cni}.yaml`))})
      const cluster = new KubeCluster(api)
      const names = server.list('nodes').map((n) => n.metadata.name as string)
      const r = seededRandom(SEED + cni.length)
      const seen = new Set<string>()
      for (let k = 0; k < 12; k++) {
        const chosen = names.map(() => pick(r, NODE_SPECS))
        for (const [i, name] of names.entries()) {
          server.update('nodes', '', name, (n) => {
            n.spec = {...chosen[i]!.spec(i + 1)}
          })
        }
        const what = `${cni}: ${chosen.map((c) => c.what).join(' / ')}`
        seen.add(chosen[0]!.what)
        const inv = await cluster.inventory()
        const s = loadsEverywhere(collectedSnapshot(inv), what)
        for (const [i, n] of s.nodes.entries()) {
          const spec = chosen[i]!.spec(i + 1) as {podCIDR?: string; podCIDRs?: string[]}
          // every range the Node holds is kept, none is made up
          const want = new Set([spec.podCIDR, ...(spec.podCIDRs ?? [])].filter((c): c is string => !!c))
          if (cni !== 'calico') expect(new Set(n.podCIDRs), what).toEqual(want)
          else for (const c of want) expect(n.podCIDRs, what).toContain(c)
          expect(n.podCIDRs, what).not.toContain('')
        }
      }
      expect(seen.size).toBeGreaterThan(3)
    },
  )

  it('a Calico node without spec.podCIDR and an unknown CNI: check and trace --snapshot load what collect wrote', async () => {
    const server = await KubeApiServer.start()
    servers.push(server)
    server.addFixture('workloads')
    for (const n of server.list('nodes')) server.update('nodes', '', n.metadata.name, (o) => (o.spec = {}))
    const api = await KubeApi.connect({kubeconfig: server.writeKubeconfig(path.join(dir, 'cli.yaml'))})
    const s = collectedSnapshot(await new KubeCluster(api).inventory())
    expect(s.cluster.clusterCIDR).toBe('')
    expect(s.nodes.map((n) => n.podCIDRs)).toEqual([[], []])
    const file = path.join(dir, 'no-podcidr.json')
    writeFileSync(file, JSON.stringify(s))
    const check = await netctl(['check', '--snapshot', file])
    expect(check.stderr).not.toContain('invalid snapshot')
    expect(check.code).toBe(3) // nothing was collected: unreachable, not a usage error
    const [a, b] = s.pods
    const trace = await netctl([
      'trace',
      `${a!.namespace}/${a!.name}`,
      `${b!.namespace}/${b!.name}`,
      '--snapshot',
      file,
    ])
    expect(trace.stderr).not.toContain('invalid snapshot')
    expect(trace.code).not.toBe(2)
  })
})
