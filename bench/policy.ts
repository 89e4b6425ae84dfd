/**
 * NetworkPolicy verdicts at scale: one trace over the recorded Calico BGP lab
 * with 1,000 NetworkPolicies in the snapshot, against the same trace with none.
 * All 1,000 are in the pods' own namespace and none selects the traced pods
 * except a default deny and the policy that allows the flow, so the verdict
 * walks every policy of the namespace (the worst case for one trace).
 *
 *   node --import tsx bench/policy.ts          (BENCH_RUNS=N, default 31)
 */
import {readFileSync} from 'node:fs'
import {cpus, loadavg} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {policyOnFlow} from '../src/analyze/checks/policy.js'
import {traceSnapshot} from '../src/analyze/trace/index.js'
import {parseSnapshot, type Snapshot, type SnapshotNetworkPolicy} from '../src/model/snapshot.js'
import {markdownTable, median} from './util.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const RUNS = Number(process.env.BENCH_RUNS ?? 31)

function snapshot(policies: SnapshotNetworkPolicy[]): Snapshot {
  const s = parseSnapshot(
    readFileSync(path.join(REPO, 'fixtures/snapshots/calico-bgp-lab.json'), 'utf8'),
    'calico-bgp-lab',
  )
  s.cluster.cni = 'calico'
  s.pods = s.pods.map((p) => ({...p, labels: {app: p.name}}))
  if (policies.length > 0) s.networkPolicies = policies
  return s
}

const many: SnapshotNetworkPolicy[] = [
  {namespace: 'default', name: 'default-deny', spec: {podSelector: {}, policyTypes: ['Ingress']}},
  {
    namespace: 'default',
    name: 'allow-web',
    spec: {
      podSelector: {matchLabels: {app: 'pod-node2-1'}},
      ingress: [{from: [{podSelector: {matchLabels: {app: 'pod-node1-1'}}}], ports: [{port: 80}]}],
    },
  },
  ...Array.from({length: 998}, (_, i) => ({
    namespace: 'default',
    name: `team-${i}`,
    spec: {
      podSelector: {matchExpressions: [{key: 'app', operator: 'In', values: [`svc-${i}`]}]},
      ingress: [{from: [{namespaceSelector: {matchLabels: {team: `t${i}`}}}], ports: [{port: 8000 + (i % 100)}]}],
    },
  })),
]

const query = {src: 'pod-node1-1', dst: 'pod-node2-1', protocol: 'tcp' as const, port: 80, size: 60, df: true}
const variants = [
  {name: 'no NetworkPolicy', snap: snapshot([])},
  {name: '1,000 NetworkPolicies', snap: snapshot(many)},
]
// the verdict must be there, or the comparison measures nothing
const check = traceSnapshot(variants[1]!.snap, query).trace
if (check.policy?.ingress.allowedBy?.policy !== 'default/allow-web' || check.disposition !== 'DELIVERED')
  throw new Error('bench/policy: the 1,000-policy trace did not find its allowing rule')

const times: number[][] = [[], [], []]
const ends = [
  {pod: 'pod-node1-1', namespace: 'default', node: 'node1'},
  {pod: 'pod-node2-1', namespace: 'default', node: 'node2'},
] as const
for (let r = 0; r < RUNS; r++) {
  variants.forEach((v, i) => {
    const t0 = performance.now()
    traceSnapshot(v.snap, query)
    times[i]!.push(performance.now() - t0)
  })
  // the verdict alone, index built included, as the trace computes it
  const t0 = performance.now()
  policyOnFlow(variants[1]!.snap, ends[0], ends[1], {protocol: 'tcp', port: 80})
  times[2]!.push(performance.now() - t0)
}
const floor = median(times[0]!)
console.log(
  `\n### NetworkPolicy verdicts (\`bench/policy.ts\`) (${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(2)}, medians of ${RUNS} runs)\n`,
)
console.log(
  markdownTable(
    ['snapshot', 'pod-node1-1 → pod-node2-1 TCP 80, median ms', 'ratio'],
    [...variants.map((v) => v.name), 'the verdict alone, 1,000 NetworkPolicies'].map((name, i) => [
      name,
      median(times[i]!).toFixed(2),
      `${(median(times[i]!) / floor).toFixed(2)}x`,
    ]),
  ),
)
