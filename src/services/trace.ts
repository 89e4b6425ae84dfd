/**
 * `netctl trace` as a service: knows nothing of flags or output. On a saved
 * snapshot it walks once. Live, it collects only what the walk needs: the
 * nodes of SRC and DST first, then whatever nodes the walk asks for
 * (`needNodes`), each node at most once, walking again after every round.
 */
import {stat} from 'node:fs/promises'

import {findingsAsTyped} from '../analyze/catalogue/as-typed.js'
import {makeFinding} from '../analyze/catalogue/index.js'
import {modeFromName} from '../analyze/checks/backend.js'
import {CHECKS, factsFor, factsMakerFor, NodeValues, runChecks, runChecksWithFacts} from '../analyze/checks/index.js'
import type {ResolvedEndpoint, TraceQuery, TraceResult} from '../analyze/trace/api.js'
import * as engine from '../analyze/trace/index.js'
import {checkSameFamily, inNamespace} from '../analyze/trace/resolve.js'
import {completeQuery} from '../analyze/trace/service.js'
import type {KubeNetworkPolicy} from '../cluster/kube-types.js'
import {
  collectNodes,
  type CollectOptions,
  type CollectTarget,
  type NodeProgress,
  type NodeResult,
  snapshotOf,
} from '../collect/collect.js'
import {openClusterSource, resolveSource, sourceCollectOptions, type SourceFlags} from '../collect/source.js'
import {type ExitCodeValue, exitOf, type Outcome, UsageError} from '../errors.js'
import type {Finding} from '../model/finding.js'
import type {Inventory} from '../model/inventory.js'
import type {NodeState} from '../model/node-state.js'
import type {Snapshot} from '../model/snapshot.js'
import {type OpenOptions, openSnapshotFile, readSnapshotFile, type SnapshotStream} from '../model/snapshot-file.js'
import type {Trace} from '../model/trace.js'
import {traceVerdict} from './outcome.js'

/** The trace engine (src/analyze/trace); tests hand in a fake. */
export interface Walker {
  traceSnapshot(snapshot: Snapshot, query: TraceQuery): TraceResult
  resolveEndpoint(snapshot: Snapshot, text: string): ResolvedEndpoint
}

/** Probes nodes (src/collect collectNodes); tests hand in a fake or fake transports. */
export type Collector = (targets: CollectTarget[], opts: CollectOptions) => Promise<NodeResult[]>

export interface TraceRunOptions extends CollectOptions {
  /** netctl's version, for the snapshot's generator */
  version: string
  walker?: Walker
  collect?: Collector
  /** before each collection round, the nodes it is about to probe (a live display adds them) */
  onRound?: (nodes: string[]) => void
  /** the checks run on the path's nodes (default: src/analyze/checks runChecks) */
  checks?: NodeChecks
  /** Kubernetes: the cluster's NetworkPolicies, kept in the snapshot the walk sees */
  networkPolicies?: KubeNetworkPolicy[]
  /** Kubernetes: a bare pod NAME is a pod of this namespace, as kubectl reads it (-n, else the context's) */
  namespace?: string
}

/**
 * The nodes a trace's path crosses, either way: where the path checks look. A
 * Service trace's path is every endpoint's walk (the Service findings — no
 * endpoints, stale rules, conntrack — are checks of those nodes like any other).
 */
export function pathNodes(trace: Trace): string[] {
  const hops = [
    trace.hops,
    trace.returnPath?.hops ?? [],
    ...(trace.endpoints ?? []).flatMap((e) => [e.hops ?? [], e.returnPath?.hops ?? []]),
  ].flat()
  return [...new Set([...hops.map((h) => h.node), ...(trace.service?.node ? [trace.service.node] : [])])]
}

/** Findings about these nodes of the snapshot (and the traced Service, `Service ns/name`), beyond the packet's own path. */
export type NodeChecks = (snapshot: Snapshot, nodes: string[], subjects?: string[]) => Finding[]
/**
 * The path checks: every check, scoped to the path's nodes (the per-node checks look at those nodes only,
 * never at all of them); for a Service DST also the findings about that Service itself (SERVICE_NO_ENDPOINTS).
 */
const defaultChecks: NodeChecks = (snapshot, nodes, subjects) =>
  runChecks(snapshot, {nodes, ...(subjects ? {subjects} : {})})
// the walker says which NetworkPolicies touch this flow; the check's list of every policy would be noise here
const OWN = new Set(['NODE_UNREACHABLE', 'COLLECTION_PARTIAL', 'POLICY_UNENFORCED', 'POLICY_DENY'])

export interface TraceRun {
  trace: Trace
  /** the snapshot the last walk saw (live: only the collected nodes have state) */
  snapshot: Snapshot
  /** live: the nodes probed, round by round (the first is SRC's and DST's); [] on a saved snapshot */
  rounds: string[][]
  /** what the answer means for the exit code (src/services/outcome.ts), and that code */
  outcome: Outcome
  exitCode: ExitCodeValue
}

const defaultWalker: Walker = {traceSnapshot: engine.traceSnapshot, resolveEndpoint: engine.resolveEndpoint}

/** The trace's fixes as they are typed on this machine (a lab node's in its namespace; no kubectl without Kubernetes). */
function fixesAsTyped(trace: Trace, snapshot: Snapshot): Trace {
  return {...trace, findings: findingsAsTyped(trace.findings, snapshot)}
}

/** Walk a saved snapshot once. */
export function traceSnapshotFile(
  snapshot: Snapshot,
  query: TraceQuery,
  opts: {walker?: Walker; checks?: NodeChecks; namespace?: string} = {},
): TraceRun {
  const walker = opts.walker ?? defaultWalker
  const ends = resolveEnds(walker, snapshot, query, opts.namespace)
  const result = walker.traceSnapshot(snapshot, ends.query)
  const trace = fixesAsTyped(
    withNodeChecks(
      withCollectionFindings(result.trace, snapshot, new Set([...ends.nodes, ...result.needNodes])),
      snapshot,
      opts.checks,
    ),
    snapshot,
  )
  return {trace, snapshot, rounds: [], ...traceEnding(trace, snapshot, ends.src.node)}
}

/**
 * Walk a saved snapshot file reading only what the walk needs, as a live trace collects: each
 * node's cluster facts are kept for the path's checks, but only the states of SRC's and DST's
 * nodes, then of the nodes the walk asks for, are kept whole; the walk is done again after each
 * read, as traceLive does. A file with its facts and index (collect writes them) is read that way:
 * the facts lines, then each needed state line at its offset, nothing else parsed; one without is
 * read through at each round, every state parsed and made into facts. A version 1 file is one
 * document, loaded whole; a backend the snapshot does not name is settled by a vote over every
 * state, so then all are kept.
 * `namespace` (-n): of a bare pod NAME and of svc/NAME.
 */
export async function traceSnapshotStream(
  file: string,
  query: TraceQuery,
  namespace?: string,
  opts: OpenOptions = {},
): Promise<TraceRun> {
  const opened = await openCached(file, opts)
  const {head, states, indexed} = opened.stream
  if (Object.keys(head.nodeStates).length > 0 || modeFromName(head.cluster.backend) === 'unknown')
    return traceSnapshotFile(await readSnapshotFile(file), query, namespace !== undefined ? {namespace} : {})
  const walker = defaultWalker
  const ends = resolveEnds(walker, head, query, namespace)
  const whole = new Map<string, NodeState>()
  // a file with its nodes' facts and the index: the facts lines (once per file), then only the states asked for, read at their offsets
  const withFacts = indexed !== undefined && indexed.factsKey === factsMakerFor(head.cluster).key
  const facts: Record<string, NodeState> = withFacts ? await opened.facts() : {}
  const read = withFacts
    ? async (names: ReadonlySet<string>): Promise<void> => {
        for (const {node, state} of await indexed!.statesOf(names)) whole.set(node, state)
      }
    : async (names: ReadonlySet<string>, first: boolean): Promise<void> => {
        const toFacts = factsFor(head)
        for await (const {node, state} of states()) {
          if (first) facts[node] = toFacts(state)
          if (names.has(node)) whole.set(node, state)
        }
      }
  await read(new Set(ends.nodes), true)
  let snapshot: Snapshot
  let result: ReturnType<Walker['traceSnapshot']>
  for (;;) {
    const nodeStates: Record<string, NodeState> = {}
    for (const n of head.nodes) if (whole.has(n.name)) nodeStates[n.name] = whole.get(n.name)!
    snapshot = {...head, nodeStates}
    result = walker.traceSnapshot(snapshot, ends.query)
    const next = result.needNodes.filter((n) => facts[n] !== undefined && !whole.has(n))
    if (next.length === 0) break
    await read(new Set(next), false)
  }
  const checks: NodeChecks = (_s, nodes, subjects) =>
    runChecksWithFacts(
      head,
      facts,
      nodes.flatMap((node) => (whole.has(node) ? [{node, state: whole.get(node)!}] : [])),
      // the nodes' addresses, subnets and VTEPs, worked out from the kept head and facts once per file
      {nodes, ...(subjects ? {subjects} : {}), ...(withFacts ? {values: opened.values} : {})},
    ).raised.map((r) => r.finding)
  const trace = fixesAsTyped(
    withNodeChecks(
      withCollectionFindings(result.trace, snapshot, new Set([...ends.nodes, ...result.needNodes])),
      snapshot,
      checks,
    ),
    snapshot,
  )
  return {trace, snapshot, rounds: [], ...traceEnding(trace, snapshot, ends.src.node)}
}

/**
 * The file the last trace of this process opened, with its facts lines once read, kept while the
 * file is the same (device, inode, size, change and modification times to the nanosecond): a
 * second trace over it (a library caller's, the benchmark's) parses neither the head nor the facts
 * again, only the states of its own path. Read-only: nothing of a trace changes the head or facts.
 */
interface OpenedFile {
  stream: SnapshotStream
  /** every node's facts (a file with its facts and index), read at the first call */
  facts(): Promise<Record<string, NodeState>>
  /** what the checks work out about every node from the head and those facts */
  values: NodeValues
}
let lastOpened: {key: string; onParse: OpenOptions['onParse']; opened: OpenedFile} | undefined

async function openCached(file: string, opts: OpenOptions): Promise<OpenedFile> {
  let key: string | undefined
  try {
    const st = await stat(file, {bigint: true})
    key = [file, st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(' ')
  } catch {
    // openSnapshotFile says what is wrong with the file
  }
  if (key !== undefined && lastOpened?.key === key && lastOpened.onParse === opts.onParse) return lastOpened.opened
  lastOpened = undefined
  const stream = await openSnapshotFile(file, opts)
  let facts: Promise<Record<string, NodeState>> | undefined
  const readFacts = async (): Promise<Record<string, NodeState>> => {
    const out: Record<string, NodeState> = {}
    for await (const {node, state} of stream.indexed!.facts()) out[node] = state
    return out
  }
  const opened: OpenedFile = {
    stream,
    values: new NodeValues(),
    facts: () =>
      (facts ??= readFacts().catch((error: unknown) => {
        // an invalid facts line is refused again by the next trace, not remembered half read
        facts = undefined
        throw error
      })),
  }
  if (key !== undefined) lastOpened = {key, onParse: opts.onParse, opened}
  return opened
}

/**
 * SRC and DST resolved before anything is walked (a typo is a usage error before any node is read):
 * the query completed (a Service DST's port and protocol), and the nodes to collect first.
 */
function resolveEnds(
  walker: Walker,
  snapshot: Snapshot,
  query: TraceQuery,
  namespace?: string,
): {src: ResolvedEndpoint; endpoints: ResolvedEndpoint[]; nodes: string[]; query: TraceQuery} {
  const ns = query.namespace ?? namespace
  const completed = completeQuery(snapshot, {...query, ...(ns !== undefined ? {namespace: ns} : {})}, ns)
  let q: TraceQuery = completed.query
  if (namespace !== undefined) q = {...q, src: inNamespace(snapshot, q.src, namespace)}
  const src = walker.resolveEndpoint(snapshot, q.src)
  if (completed.target)
    return {
      src,
      endpoints: [src],
      nodes: [...new Set([src.node, ...(completed.target.node ? [completed.target.node] : [])])],
      query: q,
    }
  if (namespace !== undefined) q = {...q, dst: inNamespace(snapshot, q.dst, namespace)}
  const dst = walker.resolveEndpoint(snapshot, q.dst)
  checkSameFamily(q, src, dst)
  return {src, endpoints: [src, dst], nodes: [...new Set([src.node, dst.node])], query: q}
}

/**
 * Collect what the walk needs from a live cluster, and walk. A node is read with only the pods the
 * trace needs there (SRC and DST, then those the walk asks for in `needPods`): a pod's namespace is
 * most of a probe on a busy node. A node is probed again, with those pods too, when the walk asks
 * for pods of a node already read; every other node at most once.
 */
export async function traceLive(inventory: Inventory, query: TraceQuery, opts: TraceRunOptions): Promise<TraceRun> {
  const {
    walker = defaultWalker,
    collect = collectNodes,
    onRound,
    checks,
    version: _v,
    networkPolicies,
    namespace,
    ...collectOpts
  } = opts
  const startedAt = new Date().toISOString()
  const meta = () => ({
    startedAt,
    finishedAt: new Date().toISOString(),
    version: opts.version,
    ...(networkPolicies ? {networkPolicies} : {}),
  })
  // each node's latest result: a node probed again for more pods replaces its first one
  const results = new Map<string, NodeResult>()
  let snapshot = snapshotOf(inventory, [], meta())

  // Endpoints first, on the skeleton: a typo is a usage error before any node is touched.
  const ends = resolveEnds(walker, snapshot, query, namespace)
  query = ends.query
  const src = ends.src
  const known = new Set(inventory.nodes.map((n) => n.name))
  const attempted = new Set<string>()
  const wanted = new Set(ends.nodes)
  const rounds: string[][] = []
  // the pods each node is read with (NAMESPACE/NAME), and those its last probe read
  const podsWanted = new Map<string, Set<string>>()
  const podsAsked = new Map<string, Set<string>>()
  const podsByKey = new Map(inventory.pods.map((p) => [`${p.namespace}/${p.name}`, p]))
  const wantPod = (key: string): void => {
    const pod = podsByKey.get(key)
    if (!pod || !known.has(pod.node)) return
    podsWanted.set(pod.node, (podsWanted.get(pod.node) ?? new Set()).add(key))
  }
  for (const e of ends.endpoints) if (e.kind === 'pod') wantPod(`${e.namespace}/${e.pod}`)
  // more pods wanted on a node already read (and not unreachable): it is probed again with them
  const podsAgain = (): string[] =>
    [...podsWanted].flatMap(([node, keys]) =>
      attempted.has(node) && results.get(node)?.state && [...keys].some((k) => !podsAsked.get(node)?.has(k))
        ? [node]
        : [],
    )

  let next = [...ends.nodes]
  let result: TraceResult
  for (;;) {
    const fresh = next.filter((n) => known.has(n) && !attempted.has(n))
    const round = [...fresh, ...podsAgain()]
    if (round.length > 0) {
      for (const n of fresh) attempted.add(n)
      rounds.push(round)
      if (fresh.length > 0) onRound?.(fresh)
      for (const n of round) podsAsked.set(n, new Set(podsWanted.get(n)))
      for (const r of await collect(targetsOf(inventory, round, podsAsked), collectOpts)) results.set(r.node, r)
      snapshot = snapshotOf(inventory, [...results.values()], meta())
    }
    result = walker.traceSnapshot(snapshot, query)
    for (const n of result.needNodes) wanted.add(n)
    for (const key of result.needPods ?? []) wantPod(key)
    // a Service's endpoint pods are where its walks end: read with their nodes, not a round later
    for (const e of result.trace.endpoints ?? []) if (e.pod && e.namespace) wantPod(`${e.namespace}/${e.pod}`)
    next = result.needNodes.filter((n) => known.has(n) && !attempted.has(n))
    if (next.length === 0 && podsAgain().length === 0) break
  }

  const trace = fixesAsTyped(
    withNodeChecks(withCollectionFindings(result.trace, snapshot, wanted), snapshot, checks),
    snapshot,
  )
  return {trace, snapshot, rounds, ...traceEnding(trace, snapshot, src.node)}
}

/** Each node with the pods it is to be read with (`pods`: NAMESPACE/NAME per node). */
function targetsOf(inventory: Inventory, names: string[], pods: Map<string, Set<string>>): CollectTarget[] {
  return names.map((name) => ({
    node: inventory.nodes.find((n) => n.name === name)!,
    pods: inventory.pods.filter((p) => p.node === name && pods.get(name)?.has(`${p.namespace}/${p.name}`)),
  }))
}

/**
 * The snapshot's collection errors for the nodes this trace involves, as
 * findings (NODE_UNREACHABLE, COLLECTION_PARTIAL), unless the walker already
 * raised the same one.
 */
export function withCollectionFindings(trace: Trace, snapshot: Snapshot, nodes: Set<string>): Trace {
  const involved = new Set([...nodes, ...pathNodes(trace)])
  const have = new Set(trace.findings.map((f) => `${f.code} ${f.node ?? ''}`))
  const added: Finding[] = []
  for (const e of snapshot.errors) {
    if (!involved.has(e.node) || have.has(`${e.code} ${e.node}`)) continue
    have.add(`${e.code} ${e.node}`)
    const ip = snapshot.nodes.find((n) => n.name === e.node)?.internalIP
    added.push(
      makeFinding(e.code, {
        node: e.node,
        subject: ip ? `${e.node} (${ip})` : e.node,
        message: e.message,
        evidence: [e.message],
        vars: {node: e.node},
      }),
    )
  }
  return added.length === 0 ? trace : {...trace, findings: [...trace.findings, ...added]}
}

/**
 * What the checks find on the nodes the path crosses (either way), beyond the
 * packet's own hops: a VTEP MAC that disagrees with the node's annotation, a
 * stale FDB entry, inconsistent MTUs, a BGP session down. Findings the walker
 * already raised (same code, node and subject) are not repeated.
 */
export function withNodeChecks(trace: Trace, snapshot: Snapshot, checks: NodeChecks = defaultChecks): Trace {
  const nodes = pathNodes(trace).filter((n) => snapshot.nodeStates[n] !== undefined)
  if (nodes.length === 0) return trace
  const have = new Set(trace.findings.map((f) => `${f.code} ${f.node ?? ''} ${f.subject}`))
  const subjects = trace.service ? [`Service ${trace.service.namespace}/${trace.service.name}`] : undefined
  const added = checks(snapshot, nodes, subjects).filter(
    (f) => !have.has(`${f.code} ${f.node ?? ''} ${f.subject}`) && !OWN.has(f.code),
  )
  const ran = {nodes, codes: CHECKS.map((c) => c.code).filter((c) => !OWN.has(c))}
  return {...trace, findings: [...trace.findings, ...added], checks: ran}
}

/** The exit code of a trace's answer (traceVerdict says which). */
export function traceExitCode(trace: Trace, snapshot: Snapshot, srcNode: string): ExitCodeValue {
  return exitOf(traceVerdict(trace, snapshot, srcNode).outcome)
}

function traceEnding(trace: Trace, snapshot: Snapshot, srcNode: string): Pick<TraceRun, 'outcome' | 'exitCode'> {
  const {outcome} = traceVerdict(trace, snapshot, srcNode)
  return {outcome, exitCode: exitOf(outcome)}
}

/**
 * What a live trace shows while it collects (a person's terminal): made at the
 * first round, when the endpoints are resolved; told each round's nodes and
 * each node's progress; finished before the transports close.
 */
export interface TraceDisplay {
  addNodes(nodes: string[]): void
  update(p: NodeProgress): void
  finish(run: Pick<TraceRun, 'snapshot' | 'rounds'> | undefined): void
}

export interface TraceRequest {
  query: TraceQuery
  /** a snapshot file written by netctl collect; else the live cluster the source flags name */
  snapshot?: string | undefined
  source: SourceFlags
  /** live: nodes probed at the same time, and how long each may take */
  parallel: number
  timeoutMs: number
  version: string
  /** live: after the walk, send its packet for real and read the counters along it (src/services/probe.ts) */
  probe?: boolean
  /** live: a display of the collection, made once the cluster is known */
  display?: ((inventory: Inventory) => TraceDisplay | undefined) | undefined
}

/** `netctl trace` behind the command: over a saved snapshot, or live over the cluster the flags name (its transports closed at the end, also on error). */
export async function runTrace(req: TraceRequest): Promise<TraceRun> {
  if (req.probe && req.snapshot !== undefined)
    throw new UsageError(
      '--probe sends a real packet, so it needs a live cluster (--lab, --inventory, Kubernetes), not --snapshot',
    )
  // -n, as kubectl reads it: the namespace of a bare pod NAME and of svc/NAME, whatever the source
  const namespace = req.source.namespace
  if (req.snapshot !== undefined) return traceSnapshotStream(req.snapshot, req.query, namespace)
  const source = await openClusterSource(resolveSource(req.source, {namespaced: true}), {
    orElse: ['a snapshot (--snapshot FILE)'],
  })
  const {inventory} = source
  let display: TraceDisplay | undefined
  let run: TraceRun | undefined
  try {
    run = await traceLive(inventory, req.query, {
      version: req.version,
      parallel: req.parallel,
      timeoutMs: req.timeoutMs,
      ...sourceCollectOptions(source),
      ...(source.kube ? {namespace: source.kube.namespace} : namespace ? {namespace} : {}),
      onRound: (nodes) => {
        // first round: the endpoints resolved, so there is something to show
        display ??= req.display?.(inventory)
        display?.addNodes(nodes)
      },
      onProgress: (p) => display?.update(p),
    })
    if (req.probe) {
      // sending a packet and reading counters: its module only for --probe
      const {probeTrace} = await import('./probe.js')
      const trace = await probeTrace(run.trace, run.snapshot, inventory.nodes, {
        transportFor: (node) => source.transportFor(node),
        timeoutMs: req.timeoutMs,
        version: req.version,
        parallel: req.parallel,
      })
      run = {...run, trace, ...traceEnding(trace, run.snapshot, trace.src.node ?? '')}
    }
    return run
  } finally {
    try {
      display?.finish(run)
    } finally {
      // debug pods deleted, SSH connections closed: also when the trace failed
      await source.close()
    }
  }
}
