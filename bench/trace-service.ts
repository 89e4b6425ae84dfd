/**
 * A trace to a Service with 100 endpoints on nodes holding kube-proxy's rules
 * for 5,000 other Services (iptables mode), against a pod-to-pod trace on the
 * same snapshot: the Service trace walks the request once as the rules take
 * it, then each endpoint there and back, so it costs about (endpoints + 1)
 * walks; the chains' verdicts are computed once and shared by the walks.
 * Synthetic node state from fixtures (bench/trace-netfilter.ts), no lab needed.
 */
import {performance} from 'node:perf_hooks'

import type {TraceQuery} from '../src/analyze/trace/api.js'
import {traceSnapshot} from '../src/analyze/trace/index.js'
import type {LabService} from '../src/lab/agents/services.js'
import type {Snapshot} from '../src/model/snapshot.js'
import {iptablesNode} from './trace-netfilter.js'
import {markdownTable, median} from './util.js'

const SERVICES = Number(process.env.BENCH_SERVICES ?? 5000)
const ENDPOINTS = Number(process.env.BENCH_ENDPOINTS ?? 100)
const RUNS = 7

/** `big`: ENDPOINTS endpoints spread over the three nodes' podCIDRs (addresses past the lab's pods: each walk crosses to its node and ends there). */
function bigService(snap: Snapshot): LabService {
  const nodes = snap.nodes
  return {
    name: 'big',
    namespace: 'bench',
    type: 'ClusterIP',
    clusterIP: '172.21.200.1',
    ports: [{name: 'http', protocol: 'TCP', port: 80, targetPort: 8080}],
    endpoints: Array.from({length: ENDPOINTS}, (_, i) => {
      const node = nodes[i % nodes.length]!
      const ip = node.podCIDRs[0]!.replace(/\.0\/\d+$/, `.${100 + Math.floor(i / nodes.length)}`)
      return {
        addresses: [ip],
        conditions: {ready: true},
        nodeName: node.name,
        targetRef: {kind: 'Pod' as const, namespace: 'bench', name: `big-${i}`},
      }
    }),
  }
}

function time(snap: Snapshot, q: TraceQuery): {ms: number; endpoints: number} {
  const first = traceSnapshot(snap, q).trace
  const xs: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    traceSnapshot(snap, q)
    xs.push(performance.now() - t0)
  }
  return {ms: median(xs), endpoints: first.endpoints?.filter((e) => e.disposition !== undefined).length ?? 0}
}

const probe = iptablesNode(0)
const snap = iptablesNode(SERVICES, [bigService(probe)])
snap.services = [bigService(probe)].map((s) => ({...s, endpoints: s.endpoints}))
const pod = time(snap, {src: 'pod-node1-1', dst: 'pod-node2-1', protocol: 'tcp', port: 8080, size: 60, df: true})
const svc = time(snap, {src: 'pod-node1-1', dst: 'svc/bench/big', size: 60, df: true})
if (svc.endpoints !== ENDPOINTS) throw new Error(`bench: ${svc.endpoints} endpoints walked, not ${ENDPOINTS}`)
console.log(
  `\n### trace to a Service with ${ENDPOINTS} endpoints, nodes holding kube-proxy's iptables rules for ${SERVICES.toLocaleString('en')} Services (median of ${RUNS})\n`,
)
console.log(
  markdownTable(
    ['trace', 'walks', 'time', 'vs pod → pod'],
    [
      ['pod → pod on another node (tcp)', '1 (and its reply)', `${pod.ms.toFixed(1)} ms`, '1.0×'],
      [
        `pod → svc/bench/big (${ENDPOINTS} endpoints)`,
        `${ENDPOINTS + 1} (and their replies)`,
        `${svc.ms.toFixed(1)} ms`,
        `${(svc.ms / pod.ms).toFixed(1)}×`,
      ],
    ],
  ),
)
