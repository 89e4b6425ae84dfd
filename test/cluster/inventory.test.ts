import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {loadInventory, parseInventory} from '../../src/cluster/inventory.js'
import {snapshotOf} from '../../src/collect/collect.js'
import {UsageError} from '../../src/errors.js'
import {labInventory} from '../../src/lab/inventory.js'
import {
  parseNamespaceLabels,
  parsePodLabels,
  parsePodNamespaces,
  parsePodPorts,
  planLab,
} from '../../src/lab/topology.js'
import {validateSnapshot} from '../../src/model/snapshot.js'
import {REPO} from '../helpers/cli.js'
import {fixture} from '../helpers/fixtures.js'

const plan = planLab(
  {name: 'inv', nodes: 3, podsPerNode: 2, backend: 'flannel-vxlan', topology: 'flat', routeReflectors: 1, ssh: false},
  '/nonexistent',
)
/** What `lab up` writes, as text, so every case below starts from a real inventory. */
const labYaml = (): string => stringify(labInventory(plan))
const edit = (fn: (inv: any) => void): string => {
  const inv = labInventory(plan) as any
  fn(inv)
  return stringify(inv)
}
const errorOf = (text: string): string => {
  try {
    parseInventory(text, 'inventory.yaml')
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    const message = (error as Error).message
    expect(message.split('\n')).toHaveLength(1)
    return message
  }
  throw new Error('expected the inventory to be rejected')
}

describe('inventory', () => {
  it('reads what lab up writes', () => {
    const inv = parseInventory(labYaml())
    expect(inv.nodes.map((n) => n.name)).toEqual(plan.nodes.map((n) => n.name))
    expect(inv.nodes[0]!.access.netns).toBe(plan.nodes[0]!.netns)
    expect(inv.pods).toHaveLength(plan.pods.length)
  })

  it('reads the documented example (docs/inventory.md) for real nodes over ssh', () => {
    const doc = fixture('..', 'docs', 'inventory.md')
    const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)![1]!
    const inv = parseInventory(yaml)
    expect(inv.nodes.every((n) => n.access.ssh !== undefined)).toBe(true)
    expect(inv.pods.some((p) => p.pid !== undefined)).toBe(true)
  })

  it('a lab node with sshd has both ways in', () => {
    const inv = parseInventory(
      edit((i) => (i.nodes[0].access.ssh = {host: '172.31.0.11', user: 'root', knownHostsFile: '/x/known_hosts'})),
    )
    expect(inv.nodes[0]!.access).toMatchObject({netns: plan.nodes[0]!.netns, ssh: {host: '172.31.0.11'}})
  })

  it('cluster.cni: a lab says flannel or calico by its backend; a file may name any CNI, or none', () => {
    expect(parseInventory(labYaml()).cluster.cni).toBe('flannel')
    const calico = planLab(
      {name: 'inv', nodes: 2, podsPerNode: 1, backend: 'calico-bgp', topology: 'flat', routeReflectors: 1, ssh: false},
      '/nonexistent',
    )
    expect(parseInventory(stringify(labInventory(calico))).cluster.cni).toBe('calico')
    expect(parseInventory(edit((i) => (i.cluster.cni = 'canal'))).cluster.cni).toBe('canal')
    expect(parseInventory(edit((i) => delete i.cluster.cni)).cluster.cni).toBeUndefined()
    expect(errorOf(edit((i) => (i.cluster.cni = '')))).toMatch(/^inventory\.yaml: cluster\.cni: /)
  })

  it('pods may be left out', () => {
    expect(parseInventory(edit((i) => delete i.pods)).pods).toEqual([])
  })

  it.each([
    [
      'a podCIDR that is not a CIDR',
      (i: any) => (i.nodes[1].podCIDR = '10.244.1.0'),
      'inventory.yaml: nodes[1].podCIDR: must be a CIDR like 10.244.1.0/24',
    ],
    [
      'an internalIP that is not an IP',
      (i: any) => (i.nodes[0].internalIP = 'node1.local'),
      'inventory.yaml: nodes[0].internalIP: must be an IP address like 10.0.0.1',
    ],
    ['a missing field', (i: any) => delete i.nodes[2].internalIP, 'inventory.yaml: nodes[2].internalIP: is required'],
    [
      'a misspelt field',
      (i: any) => ((i.nodes[2].podCidr = i.nodes[2].podCIDR), delete i.nodes[2].podCIDR),
      'inventory.yaml: nodes[2].podCidr: is not a known field (did you mean podCIDR?)',
    ],
    [
      'an unknown field',
      (i: any) => (i.cluster.flavour = 'x'),
      'inventory.yaml: cluster.flavour: is not a known field',
    ],
    ['the wrong kind', (i: any) => (i.kind = 'Cluster'), 'inventory.yaml: kind: must be "Inventory"'],
    [
      'a port that is not a number',
      (i: any) => (i.nodes[0].access = {ssh: {host: 'a', port: 'ssh'}}),
      'inventory.yaml: nodes[0].access.ssh.port: must be an integer',
    ],
    [
      'a node with no way in',
      (i: any) => (i.nodes[1].access = {}),
      'inventory.yaml: nodes[1].access: needs netns (a lab node) or ssh (a real node)',
    ],
    [
      'two nodes of one name',
      (i: any) => (i.nodes[2].name = 'node1'),
      "inventory.yaml: nodes[2].name: 'node1' is already nodes[0]",
    ],
    [
      'a pod on an unknown node',
      (i: any) => (i.pods[3].node = 'node9'),
      "inventory.yaml: pods[3].node: no node named 'node9' in nodes",
    ],
    [
      'a pod with netns and pid',
      (i: any) => (i.pods[0].pid = 10),
      'inventory.yaml: pods[0]: give netns or pid, not both',
    ],
    [
      'a negative pid',
      (i: any) => ((i.pods[0].pid = -1), delete i.pods[0].netns),
      'inventory.yaml: pods[0].pid: must be >= 1',
    ],
    [
      'an annotation that is not a string',
      (i: any) => (i.nodes[0].annotations['x/y'] = 3),
      'inventory.yaml: nodes[0].annotations["x/y"]: must be a string',
    ],
  ])('%s: one line naming the field', (_what, change, message) => {
    expect(errorOf(edit(change))).toBe(message)
  })

  it('YAML that does not parse names the line', () => {
    expect(errorOf('apiVersion: netctl.dev/v1\nkind: Inventory\nnodes:\n  - name: [a\n')).toMatch(
      /^inventory\.yaml: line \d+: not valid YAML/,
    )
    expect(errorOf('- just\n- a list\n')).toBe(
      'inventory.yaml: expected a mapping with apiVersion, kind, cluster, nodes',
    )
  })

  it('a file that is not there', async () => {
    await expect(loadInventory(path.join(REPO, 'no-such-inventory.yaml'))).rejects.toThrow(
      /no-such-inventory\.yaml: no such file/,
    )
    const dir = mkdtempSync(path.join(tmpdir(), 'col-inv-'))
    writeFileSync(path.join(dir, 'i.yaml'), labYaml())
    try {
      expect((await loadInventory(path.join(dir, 'i.yaml'))).cluster.name).toBe('inv')
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

describe('NetworkPolicies, namespaces and pod labels in an inventory', () => {
  const withPolicies = () =>
    edit((inv) => {
      inv.pods[0].labels = {app: 'db', tier: 'data'}
      inv.pods[0].ports = [{name: 'postgres', containerPort: 5432, protocol: 'TCP'}]
      inv.pods[1].hostNetwork = true
      inv.namespaces = [{name: 'default', labels: {team: 'blue'}}]
      inv.networkPolicies = [
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: {name: 'db-from-web', namespace: 'default'},
          spec: {podSelector: {matchLabels: {app: 'db'}}, ingress: [{ports: [{port: 'postgres'}]}]},
        },
        {metadata: {name: 'no-namespace'}, spec: {podSelector: {}}},
      ]
    })

  it('are read, and a snapshot of the inventory carries them (a policy without namespace is in default)', () => {
    const inv = parseInventory(withPolicies(), 'inventory.yaml')
    const snap = snapshotOf(inv, [], {
      startedAt: '2026-12-04T12:00:00Z',
      finishedAt: '2026-12-04T12:00:01Z',
      version: '0.0.0',
    })
    expect(snap.networkPolicies).toEqual([
      {
        namespace: 'default',
        name: 'db-from-web',
        spec: {podSelector: {matchLabels: {app: 'db'}}, ingress: [{ports: [{port: 'postgres'}]}]},
      },
      {namespace: 'default', name: 'no-namespace', spec: {podSelector: {}}},
    ])
    expect(snap.namespaces).toEqual([{name: 'default', labels: {team: 'blue'}}])
    expect(snap.pods[0]).toMatchObject({
      labels: {app: 'db', tier: 'data'},
      ports: [{name: 'postgres', containerPort: 5432, protocol: 'TCP'}],
    })
    expect(snap.pods[1]!.hostNetwork).toBe(true)
    expect(() => validateSnapshot(JSON.parse(JSON.stringify(snap)))).not.toThrow()
  })

  it('refuses a policy without metadata.name and a port that is no port, in one line naming the field', () => {
    expect(errorOf(edit((inv) => (inv.networkPolicies = [{metadata: {}, spec: {}}])))).toMatch(
      /^inventory\.yaml: networkPolicies\[0\]\.metadata/,
    )
    expect(errorOf(edit((inv) => (inv.pods[0].ports = [{containerPort: 70000}])))).toMatch(
      /^inventory\.yaml: pods\[0\]\.ports\[0\]\.containerPort/,
    )
  })

  it('lab up labels every pod app=<pod name>, then --pod-labels (every pod, then one)', () => {
    const labelled = planLab(
      {
        name: 'inv',
        nodes: 2,
        podsPerNode: 2,
        backend: 'calico-bgp',
        topology: 'flat',
        routeReflectors: 1,
        ssh: false,
        podLabels: parsePodLabels(['*:team=blue', 'pod-node1-1:role=db,team=red']),
      },
      '/nonexistent',
    )
    const pods = labInventory(labelled).pods
    expect(pods.find((p) => p.name === 'pod-node1-1')!.labels).toEqual({app: 'pod-node1-1', team: 'red', role: 'db'})
    expect(pods.find((p) => p.name === 'pod-node2-2')!.labels).toEqual({app: 'pod-node2-2', team: 'blue'})
    expect(labInventory(plan).pods.every((p) => p.labels?.app === p.name)).toBe(true)
    expect(() =>
      planLab(
        {
          name: 'inv',
          nodes: 2,
          podsPerNode: 2,
          backend: 'calico-bgp',
          topology: 'flat',
          routeReflectors: 1,
          ssh: false,
          podLabels: {'pod-node3-1': {a: 'b'}},
        },
        '/nonexistent',
      ),
    ).toThrow(/--pod-labels: no pod 'pod-node3-1' in this lab/)
    expect(() => parsePodLabels(['role=db'])).toThrow(/use POD:KEY=VALUE/)
    expect(() => parsePodLabels(['pod-node1-1:bad key=x'])).toThrow(/'bad key=x' is not a label/)
  })

  it('lab up puts pods in namespaces (--pod-namespace), labels namespaces (--namespace-labels) and gives pods named ports (--pod-ports); the inventory carries them, and a snapshot of it validates', () => {
    const opts = {
      name: 'inv',
      nodes: 2,
      podsPerNode: 2,
      backend: 'calico-bgp' as const,
      topology: 'flat' as const,
      routeReflectors: 1,
      ssh: false,
      podNamespaces: parsePodNamespaces(['*:x', 'pod-node2-2:y']),
      namespaceLabels: parseNamespaceLabels(['x:team=red,ns=x', 'z:ns=z']),
      podPorts: parsePodPorts(['*:serve-80-tcp=80,serve-80-udp=80/udp', 'pod-node1-1:dns=53/UDP']),
    }
    const planned = planLab(opts, '/nonexistent')
    const inv = labInventory(planned)
    expect(inv.pods.map((p) => `${p.namespace}/${p.name}`)).toEqual([
      'x/pod-node1-1',
      'x/pod-node1-2',
      'x/pod-node2-1',
      'y/pod-node2-2',
    ])
    expect(inv.pods.find((p) => p.name === 'pod-node2-1')!.ports).toEqual([
      {name: 'serve-80-tcp', containerPort: 80, protocol: 'TCP'},
      {name: 'serve-80-udp', containerPort: 80, protocol: 'UDP'},
    ])
    expect(inv.pods.find((p) => p.name === 'pod-node1-1')!.ports).toEqual([
      {name: 'dns', containerPort: 53, protocol: 'UDP'},
    ])
    // every namespace of a pod, and those labelled without pods
    expect(inv.namespaces).toEqual([
      {name: 'x', labels: {team: 'red', ns: 'x'}},
      {name: 'y'},
      {name: 'z', labels: {ns: 'z'}},
    ])
    // Calico names a pod's veth from its namespace and name: pods of another namespace get another one
    expect(planned.pods[3]!.hostVeth).not.toBe(planLab({...opts, podNamespaces: {}}, '/nonexistent').pods[3]!.hostVeth)
    const back = parseInventory(stringify(inv), 'inventory.yaml')
    expect(back.namespaces).toEqual(inv.namespaces)
    expect(back.pods.map((p) => p.ports)).toEqual(inv.pods.map((p) => p.ports))
    expect(() => parsePodNamespaces(['pod-node1-1:Bad_NS'])).toThrow(/use POD:NAMESPACE/)
    expect(() => parsePodPorts(['*:http=99999'])).toThrow(/'http=99999' is not a port NAME=PORT/)
    expect(() => parsePodPorts(['*:a-very-long-port-name=80'])).toThrow(/is not a port/)
    expect(() => parseNamespaceLabels(['X:a=b'])).toThrow(/'X' is not a namespace name/)
    expect(() => planLab({...opts, podPorts: {'pod-node9-1': []}}, '/nonexistent')).toThrow(
      /--pod-ports: no pod 'pod-node9-1'/,
    )
  })
})
