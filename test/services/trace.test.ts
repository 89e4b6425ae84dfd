import {describe, expect, it} from 'vitest'

import type {TraceQuery, TraceResult} from '../../src/analyze/trace/api.js'
import {resolveEndpoint} from '../../src/analyze/trace/resolve.js'
import type {CollectTarget, NodeResult} from '../../src/collect/collect.js'
import {UsageError} from '../../src/errors.js'
import type {Inventory, InventoryNode} from '../../src/model/inventory.js'
import type {Snapshot} from '../../src/model/snapshot.js'
import type {Hop, Trace} from '../../src/model/trace.js'
import {traceExitCode, traceLive, traceSnapshotFile, type Walker} from '../../src/services/trace.js'
import {type Transport, TransportError, type TransportResult} from '../../src/transport/types.js'
import {fixture, snapshotFixture} from '../helpers/fixtures.js'

/** The marker the collector put in the script it sent. */
const markerIn = (script: string): string => /^M='?(@@NETCTL-[A-Za-z0-9]+)'?$/m.exec(script)![1]!
const PROBE = fixture('probe', 'flannel-vxlan-node1.out')

/** A node answering with a recorded probe output, as if it had run the script. */
class RecordedNode implements Transport {
  readonly target: string
  constructor(name: string) {
    this.target = `fake ${name}`
  }
  async exec(script: string): Promise<TransportResult> {
    return {stdout: PROBE.replaceAll('@@NETCTL-fixture', markerIn(script)), stderr: '', code: 0}
  }
  async close(): Promise<void> {}
}

class RefusingNode implements Transport {
  constructor(readonly target: string) {}
  async exec(): Promise<TransportResult> {
    throw new TransportError('connect ECONNREFUSED', 'refused')
  }
  async close(): Promise<void> {}
}

const node = (i: number): InventoryNode => ({
  name: `node${i}`,
  internalIP: `172.31.0.${10 + i}`,
  podCIDR: `172.20.${i}.0/24`,
  access: {netns: `t.node${i}`},
})
const inventory: Inventory = {
  apiVersion: 'netctl.dev/v1',
  kind: 'Inventory',
  cluster: {name: 't', backend: 'flannel-host-gw', clusterCIDR: '172.20.0.0/16', source: 'file'},
  nodes: [1, 2, 3, 4].map(node),
  pods: [1, 2, 3, 4].map((i) => ({
    name: `pod${i}`,
    namespace: 'default',
    node: `node${i}`,
    ip: `172.20.${i}.2`,
    netns: `t.node${i}.pod1`,
  })),
}

/** Every fake node replays node1's probe, so the cluster is not coherent: the checks would rightly object. */
const noChecks = (): [] => []

/** Transports that count how often each node is reached; `dead` nodes refuse. */
function fakeCluster(dead: string[] = []) {
  const calls: Record<string, number> = {}
  return {
    calls,
    transportFactory: (n: InventoryNode): Transport => {
      calls[n.name] = (calls[n.name] ?? 0) + 1
      return dead.includes(n.name) ? new RefusingNode(`fake ${n.name}`) : new RecordedNode(n.name)
    },
  }
}

/**
 * A walker whose packet goes along `path` (node names). It walks as far as
 * the snapshot has state and asks for the next node it lacks; with every node
 * it is DELIVERED both ways.
 */
function pathWalker(path: string[]): Walker & {walks: number} {
  const w = {
    walks: 0,
    resolveEndpoint,
    traceSnapshot(snapshot: Snapshot, query: TraceQuery): TraceResult {
      w.walks += 1
      const {kind: _s, ...src} = resolveEndpoint(snapshot, query.src)
      const {kind: _d, ...dst} = resolveEndpoint(snapshot, query.dst)
      const lacking = path.find((n) => snapshot.nodeStates[n] === undefined)
      const walked = path.slice(0, lacking ? path.indexOf(lacking) : path.length)
      const hops: Hop[] = walked.map((n) => ({
        node: n,
        netns: `t.${n}`,
        action: 'forward',
        evidence: [`${n} forwards`],
      }))
      const packet = {src: src.ip, dst: dst.ip, protocol: query.protocol, size: query.size, df: query.df, encap: []}
      const trace: Trace = lacking
        ? {
            disposition: 'INSUFFICIENT_INFO',
            src,
            dst,
            packet,
            hops: hops.length ? hops : [{node: path[0]!, netns: '', action: 'drop', evidence: []}],
            returnPath: null,
            findings: [],
            missing: [`${lacking}: not collected`],
          }
        : {
            disposition: 'DELIVERED',
            src,
            dst,
            packet,
            hops,
            returnPath: {disposition: 'DELIVERED', hops: [...hops].reverse()},
            findings: [],
          }
      return {trace, needNodes: lacking ? [lacking] : []}
    },
  }
  return w
}

const query = (src: string, dst: string): TraceQuery => ({src, dst, protocol: 'icmp', size: 84, df: false})

describe('traceLive: collect only what the walk needs', () => {
  it('collects SRC and DST nodes first, then each node the walk asks for, once, and stops', async () => {
    const cluster = fakeCluster()
    const walker = pathWalker(['node1', 'node2', 'node3'])
    const rounds: string[][] = []
    const run = await traceLive(inventory, query('pod1', 'pod3'), {
      version: 't',
      walker,
      transportFactory: cluster.transportFactory,
      checks: noChecks,
      onRound: (r) => rounds.push(r),
    })
    expect(run.rounds).toEqual([['node1', 'node3'], ['node2']])
    expect(rounds).toEqual(run.rounds)
    expect(cluster.calls).toEqual({node1: 1, node2: 1, node3: 1})
    expect(Object.keys(run.snapshot.nodeStates).sort()).toEqual(['node1', 'node2', 'node3'])
    expect(walker.walks).toBe(2)
    expect(run.trace.disposition).toBe('DELIVERED')
    expect(run.exitCode).toBe(0)
  })

  it('a node on the path that cannot be reached: asked for again, probed once, NODE_UNREACHABLE, exit 1', async () => {
    const cluster = fakeCluster(['node2'])
    const walker = pathWalker(['node1', 'node2', 'node3'])
    const run = await traceLive(inventory, query('pod1', 'pod3'), {
      version: 't',
      walker,
      transportFactory: cluster.transportFactory,
      checks: noChecks,
    })
    expect(cluster.calls).toEqual({node1: 1, node2: 1, node3: 1})
    expect(run.rounds).toEqual([['node1', 'node3'], ['node2']])
    expect(run.trace.disposition).toBe('INSUFFICIENT_INFO')
    expect(run.trace.findings.map((f) => [f.code, f.node, f.severity])).toEqual([
      ['NODE_UNREACHABLE', 'node2', 'error'],
    ])
    expect(run.trace.findings[0]!.message).toBe('fake node2: connect ECONNREFUSED')
    expect(run.exitCode).toBe(1)
  })

  it("SRC's node unreachable: exit 3, with the finding", async () => {
    const cluster = fakeCluster(['node1'])
    const run = await traceLive(inventory, query('pod1', 'pod3'), {
      version: 't',
      walker: pathWalker(['node1', 'node3']),
      transportFactory: cluster.transportFactory,
      checks: noChecks,
    })
    expect(cluster.calls).toEqual({node1: 1, node3: 1})
    expect(run.exitCode).toBe(3)
    expect(run.trace.findings.map((f) => f.code)).toEqual(['NODE_UNREACHABLE'])
  })

  it('both ends on one node: one node, one round', async () => {
    const cluster = fakeCluster()
    const run = await traceLive(inventory, query('pod4', 'node4'), {
      version: 't',
      walker: pathWalker(['node4']),
      transportFactory: cluster.transportFactory,
      checks: noChecks,
    })
    expect(run.rounds).toEqual([['node4']])
    expect(cluster.calls).toEqual({node4: 1})
    expect(run.exitCode).toBe(0)
  })

  it('a node the walk asks for that the inventory does not have is not chased', async () => {
    const cluster = fakeCluster()
    const walker = pathWalker(['node1', 'node9', 'node3'])
    const run = await traceLive(inventory, query('pod1', 'pod3'), {
      version: 't',
      walker,
      transportFactory: cluster.transportFactory,
      checks: noChecks,
    })
    expect(run.rounds).toEqual([['node1', 'node3']])
    expect(walker.walks).toBe(1)
    expect(run.trace.missing).toEqual(['node9: not collected'])
    expect(run.exitCode).toBe(1)
  })

  it('Kubernetes: a bare NAME is a pod of the namespace given, and the NetworkPolicies reach the snapshot the walk sees', async () => {
    const cluster = fakeCluster()
    const kube: Inventory = {
      ...inventory,
      cluster: {...inventory.cluster, source: 'kubernetes', cni: 'flannel'},
      pods: [...inventory.pods, {...inventory.pods[1]!, namespace: 'shop', name: 'pod1', ip: '172.20.2.9'}],
    }
    const policy = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {name: 'deny', namespace: 'shop'},
      spec: {podSelector: {}},
    }
    const seen: Array<{src: string; dst: string; policies: number}> = []
    const walker = pathWalker(['node2', 'node3'])
    const inner = walker.traceSnapshot.bind(walker)
    walker.traceSnapshot = (snapshot, q) => {
      seen.push({src: q.src, dst: q.dst, policies: snapshot.networkPolicies?.length ?? -1})
      return inner(snapshot, q)
    }
    const run = await traceLive(kube, query('pod1', 'default/pod3'), {
      version: 't',
      walker,
      transportFactory: cluster.transportFactory,
      checks: noChecks,
      namespace: 'shop',
      networkPolicies: [policy],
    })
    expect(run.trace.src).toMatchObject({pod: 'pod1', namespace: 'shop', node: 'node2'})
    expect(seen[0]).toEqual({src: 'shop/pod1', dst: 'default/pod3', policies: 1})
    expect(run.snapshot.networkPolicies).toEqual([{namespace: 'shop', name: 'deny', spec: {podSelector: {}}}])
    expect(run.snapshot.cluster.cni).toBe('flannel')
    expect(cluster.calls).toEqual({node2: 1, node3: 1})
  })

  it('Kubernetes: a bare NAME not in the namespace is a usage error that says where it is, before any node is reached', async () => {
    const cluster = fakeCluster()
    const kube: Inventory = {...inventory, cluster: {...inventory.cluster, source: 'kubernetes'}}
    const run = traceLive(kube, query('pod1', 'pod3'), {
      version: 't',
      walker: pathWalker([]),
      transportFactory: cluster.transportFactory,
      checks: noChecks,
      namespace: 'shop',
    })
    await expect(run).rejects.toThrow(
      new UsageError('no pod shop/pod1 in cluster t (pod1 is in namespace default)', false),
    )
    expect(cluster.calls).toEqual({})
  })

  it('an unknown endpoint is a usage error before any node is reached', async () => {
    const cluster = fakeCluster()
    await expect(
      traceLive(inventory, query('pod1', 'pod7'), {
        version: 't',
        walker: pathWalker([]),
        transportFactory: cluster.transportFactory,
        checks: noChecks,
      }),
    ).rejects.toThrow(UsageError)
    expect(cluster.calls).toEqual({})
  })
})

describe('on a saved snapshot', () => {
  /** The recorded 3-node lab with node2 and node3 as a failed collection left them. */
  function brokenSnapshot(): Snapshot {
    const s = snapshotFixture('flannel-vxlan-lab')
    delete s.nodeStates.node3
    s.errors.push({node: 'node3', code: 'NODE_UNREACHABLE', message: 'netns col-fx.node3: no such network namespace'})
    s.errors.push({node: 'node2', code: 'COLLECTION_PARTIAL', message: '1 section incomplete: iptables: exit code 1'})
    return s
  }

  it('collection errors become findings only for the nodes the trace involves', () => {
    const walker = pathWalker(['node1', 'node3'])
    const run = traceSnapshotFile(brokenSnapshot(), query('pod-node1-1', 'pod-node3-2'), {walker, checks: noChecks})
    expect(run.rounds).toEqual([])
    expect(run.trace.findings.map((f) => [f.code, f.node, f.subject])).toEqual([
      ['NODE_UNREACHABLE', 'node3', 'node3 (172.31.0.13)'],
    ])
    expect(run.trace.findings[0]!.evidence).toEqual(['netns col-fx.node3: no such network namespace'])
    expect(run.exitCode).toBe(1)
  })

  it('a finding the walker raised itself is not repeated', () => {
    const walker = pathWalker(['node1', 'node3'])
    const inner = walker.traceSnapshot.bind(walker)
    walker.traceSnapshot = (snapshot, q) => {
      const r = inner(snapshot, q)
      r.trace.findings.push({
        code: 'NODE_UNREACHABLE',
        severity: 'error',
        node: 'node3',
        subject: 'node3',
        message: 'the walker says so',
        evidence: [],
        fix: '',
      })
      return r
    }
    const run = traceSnapshotFile(brokenSnapshot(), query('pod-node1-1', 'pod-node3-2'), {walker, checks: noChecks})
    expect(run.trace.findings.map((f) => f.message)).toEqual(['the walker says so'])
  })

  it("SRC's node recorded unreachable: exit 3; DST's: a diagnosis (exit 1)", () => {
    const walker = pathWalker(['node3', 'node1'])
    expect(
      traceSnapshotFile(brokenSnapshot(), query('pod-node3-2', 'pod-node1-1'), {walker, checks: noChecks}).exitCode,
    ).toBe(3)
    expect(
      traceSnapshotFile(brokenSnapshot(), query('pod-node1-1', 'pod-node3-2'), {walker, checks: noChecks}).exitCode,
    ).toBe(1)
  })
})

describe('traceExitCode', () => {
  const snapshot = snapshotFixture('flannel-vxlan-lab')
  const delivered = pathWalker(['node1', 'node2']).traceSnapshot(snapshot, query('pod-node1-1', 'pod-node2-1')).trace
  const finding = (severity: 'error' | 'warning') => ({
    code: 'MTU_MISMATCH' as const,
    severity,
    subject: 'x',
    message: 'x',
    evidence: [],
    fix: '',
  })

  it('0 only when delivered both ways with no error finding', () => {
    expect(traceExitCode(delivered, snapshot, 'node1')).toBe(0)
    expect(traceExitCode({...delivered, findings: [finding('warning')]}, snapshot, 'node1')).toBe(0)
    expect(traceExitCode({...delivered, findings: [finding('error')]}, snapshot, 'node1')).toBe(1)
    expect(
      traceExitCode({...delivered, returnPath: {disposition: 'RP_FILTER_DROP', hops: []}}, snapshot, 'node1'),
    ).toBe(1)
    expect(traceExitCode({...delivered, returnPath: null}, snapshot, 'node1')).toBe(1)
    expect(traceExitCode({...delivered, disposition: 'FDB_MISS', returnPath: null}, snapshot, 'node1')).toBe(1)
  })
})

describe('the checks on the path nodes come with the trace', () => {
  const healthy = (): Snapshot => snapshotFixture('flannel-vxlan-lab')

  it('a healthy recorded lab: delivered both ways, no findings, exit 0 (the real walker and checks)', () => {
    const run = traceSnapshotFile(healthy(), query('pod-node1-1', 'pod-node3-2'))
    expect(run.trace.disposition).toBe('DELIVERED')
    expect(run.trace.returnPath?.disposition).toBe('DELIVERED')
    expect(run.trace.findings).toEqual([])
    expect(run.exitCode).toBe(0)
  })

  it("a fault off the packet's path on a path node is reported, and turns the exit code to 1", () => {
    const s = healthy()
    // node1 forgets node2's FDB entry: pod-node1-1 → pod-node3-2 does not use it, but node1 is on the path
    const node2 = s.nodes.find((n) => n.name === 'node2')!
    const vtep = JSON.parse(node2.annotations['flannel.alpha.coreos.com/backend-data']!) as {VtepMAC: string}
    s.nodeStates.node1!.fdb = s.nodeStates.node1!.fdb.filter((f) => f.mac !== vtep.VtepMAC)
    const run = traceSnapshotFile(s, query('pod-node1-1', 'pod-node3-2'))
    expect(run.trace.disposition).toBe('DELIVERED')
    const fdb = run.trace.findings.filter((f) => f.code === 'FDB_MISSING')
    expect(fdb).toHaveLength(1)
    expect(fdb[0]!.node).toBe('node1')
    expect(fdb[0]!.fix).toContain(vtep.VtepMAC)
    expect(run.exitCode).toBe(1)
  })
})

describe('traceLive reads only the pods the walk needs (the real walker and checks)', () => {
  /** The recorded lab as a live cluster: its inventory, and a collector answering from its states with the pods asked for. */
  function recordedCluster(s: Snapshot) {
    const inv: Inventory = {
      apiVersion: 'netctl.dev/v1',
      kind: 'Inventory',
      cluster: {name: s.cluster.name, backend: s.cluster.backend, clusterCIDR: s.cluster.clusterCIDR, source: 'lab'},
      nodes: s.nodes.map((n) => ({
        name: n.name,
        internalIP: n.internalIP,
        podCIDR: n.podCIDRs[0]!,
        access: {netns: n.netns!},
        annotations: n.annotations,
        labels: n.labels,
      })),
      pods: s.pods.map((p) => ({name: p.name, namespace: p.namespace, node: p.node, ip: p.ip, netns: p.netns!})),
    }
    const asked: Array<[string, string[]]> = []
    const collect = async (targets: CollectTarget[]): Promise<NodeResult[]> =>
      targets.map((t) => {
        const want = new Set(t.pods.map((p) => `${p.namespace}/${p.name}`))
        asked.push([t.node.name, [...want]])
        const state = s.nodeStates[t.node.name]!
        return {
          node: t.node.name,
          state: {...state, pods: state.pods.filter((p) => want.has(`${p.namespace}/${p.name}`))},
          errors: [],
          ms: 0,
        }
      })
    return {inv, asked, collect}
  }
  const lab = (): Snapshot => snapshotFixture('flannel-vxlan-lab')
  const mtu = (s: Snapshot, node: string, pod: string, value: number): void => {
    s.nodeStates[node]!.pods.find((p) => p.name === pod)!.links.find((l) => l.name === 'eth0')!.mtu = value
  }

  it('reads SRC and DST pods only, and answers as the whole snapshot does', async () => {
    const s = lab()
    const c = recordedCluster(s)
    const run = await traceLive(c.inv, query('pod-node1-1', 'pod-node3-2'), {version: 't', collect: c.collect})
    expect(c.asked).toEqual([
      ['node1', ['default/pod-node1-1']],
      ['node3', ['default/pod-node3-2']],
    ])
    const whole = traceSnapshotFile(lab(), query('pod-node1-1', 'pod-node3-2'))
    expect(run.trace).toEqual(whole.trace)
    expect(run.exitCode).toBe(whole.exitCode)
  })

  it('a node that has not learnt its pods yet (no ARP or FDB entries for them): still only SRC and DST pods', async () => {
    const s = lab()
    const forget = (n: string) => {
      const st = s.nodeStates[n]!
      st.neighbours = st.neighbours.filter((e) => e.dev !== 'cni0')
      st.fdb = st.fdb.filter((e) => !(e.master === 'cni0' && !e.permanent))
    }
    forget('node1')
    forget('node3')
    const c = recordedCluster(s)
    const run = await traceLive(c.inv, query('pod-node1-1', 'pod-node3-2'), {version: 't', collect: c.collect})
    expect(c.asked).toEqual([
      ['node1', ['default/pod-node1-1']],
      ['node3', ['default/pod-node3-2']],
    ])
    expect(run.trace).toEqual(traceSnapshotFile(s, query('pod-node1-1', 'pod-node3-2')).trace)
  })

  it("a path pod's fault is still found; a fault of a pod off the path only by the whole snapshot (check)", async () => {
    const s = lab()
    // 1500 inside a pod: more than the 1450 the vxlan encapsulation leaves room for
    mtu(s, 'node3', 'pod-node3-2', 1500) // DST: on the path
    mtu(s, 'node1', 'pod-node1-2', 1500) // SRC's node, not on the path
    const c = recordedCluster(s)
    const run = await traceLive(c.inv, query('pod-node1-1', 'pod-node3-2'), {version: 't', collect: c.collect})
    const subjects = (t: Trace) => t.findings.filter((f) => f.code === 'MTU_EXCEEDS_ENCAP').map((f) => f.subject)
    expect(subjects(run.trace).some((x) => x.includes('pod-node3-2'))).toBe(true)
    expect(subjects(run.trace).some((x) => x.includes('pod-node1-2'))).toBe(false)
    expect(run.exitCode).toBe(1)
    const whole = traceSnapshotFile(s, query('pod-node1-1', 'pod-node3-2'))
    expect(subjects(whole.trace).some((x) => x.includes('pod-node1-2'))).toBe(true)
  })

  it('a walk that reaches a pod it did not read probes that node again with its pods, and answers as the whole snapshot does', async () => {
    const s = lab()
    // node3's ARP entry for pod-node3-2's address names pod-node3-1's MAC: cni0 sends the packet to the wrong pod
    const other = s.nodeStates.node3!.pods.find((p) => p.name === 'pod-node3-1')!.links.find((l) => l.name === 'eth0')!
    s.nodeStates.node3!.neighbours.find((n) => n.dev === 'cni0' && n.dst === '172.20.3.3')!.lladdr = other.mac
    const c = recordedCluster(s)
    const rounds: string[][] = []
    const run = await traceLive(c.inv, query('pod-node1-1', 'pod-node3-2'), {
      version: 't',
      collect: c.collect,
      onRound: (r) => rounds.push(r),
    })
    expect(run.rounds).toEqual([['node1', 'node3'], ['node3']])
    expect(rounds).toEqual([['node1', 'node3']])
    expect(c.asked.at(-1)).toEqual(['node3', ['default/pod-node3-1', 'default/pod-node3-2']])
    const whole = traceSnapshotFile(s, query('pod-node1-1', 'pod-node3-2'))
    expect(run.trace.disposition).not.toBe('INSUFFICIENT_INFO')
    expect(run.trace.disposition).toBe(whole.trace.disposition)
    expect(run.trace.hops).toEqual(whole.trace.hops)
  })
})
