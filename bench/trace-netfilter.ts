/**
 * A trace across nodes holding 5,000 Services' kube-proxy rules (iptables and
 * nftables mode) against the same trace on an empty firewall: the walk must
 * stay linear in the rules, as the kernel's chains are (nft's verdict map is
 * a lookup). Synthetic node state from fixtures, no lab needed.
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {performance} from 'node:perf_hooks'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {traceSnapshot} from '../src/analyze/trace/index.js'
import {parseIptablesSave} from '../src/collect/parse/iptables.js'
import {parseNftRuleset} from '../src/collect/parse/nft.js'
import {kubeProxyIptables} from '../src/lab/agents/kube-proxy.js'
import type {LabService} from '../src/lab/agents/services.js'
import type {LabPlan} from '../src/lab/types.js'
import {parseSnapshot, type Snapshot} from '../src/model/snapshot.js'
import {markdownTable, median} from './util.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const fixture = (...p: string[]): string => readFileSync(path.join(REPO, 'fixtures', ...p), 'utf8')
const SERVICES = Number(process.env.BENCH_SERVICES ?? 5000)
const RUNS = 15

/** The n-th Service: a ClusterIP in 172.21/16, TCP 80 → 8080, two endpoints on node1 and node2 (as the lab's pods are). */
export function services(n: number): LabService[] {
  return Array.from({length: n}, (_, i) => ({
    name: `svc-${i}`,
    namespace: 'bench',
    type: 'ClusterIP' as const,
    clusterIP: `172.21.${16 + Math.floor(i / 250)}.${1 + (i % 250)}`,
    ports: [{name: 'http', protocol: 'TCP' as const, port: 80, targetPort: 8080}],
    endpoints: ['172.20.1.2', '172.20.2.2'].map((ip, k) => ({
      addresses: [ip],
      conditions: {ready: true},
      nodeName: `node${k + 1}`,
      targetRef: {kind: 'Pod' as const, namespace: 'default', name: `pod-node${k + 1}-1`},
    })),
  }))
}

export function base(): Snapshot {
  return parseSnapshot(fixture('snapshots', 'calico-vxlan-lab.json'), 'calico-vxlan-lab')
}

/** kube-proxy's iptables-restore input for n Services (and any given), as iptables-save then lists it. */
export function iptablesNode(n: number, extra: LabService[] = []): Snapshot {
  const snap = base()
  const plan = {clusterCIDR: snap.cluster.clusterCIDR, nodes: [], pods: []} as unknown as LabPlan
  const text = kubeProxyIptables(plan, {name: 'node1'}, [...services(n), ...extra]).toString()
  const builtins: Record<string, string[]> = {
    nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
    filter: ['INPUT', 'FORWARD', 'OUTPUT'],
    mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  }
  // into empty built-in chains `-I CHAIN N` in order is an append: iptables-save lists them as -A
  // and iptables-save puts the protocol before its match module (`-p tcp -m tcp`), as the kernel keeps them
  const save = text
    .replace(/^-I (\S+) \d+ /gm, '-A $1 ')
    .replace(/-m (tcp|udp) -p (tcp|udp) (-d \S+ )?/g, '$3-p $2 -m $1 ')
    .replace(/^\*(\w+)$/gm, (_m, t: string) =>
      [`*${t}`, ...(builtins[t] ?? []).map((c) => `:${c} ACCEPT [0:0]`)].join('\n'),
    )
  const ipt = parseIptablesSave(save)
  for (const s of Object.values(snap.nodeStates)) s.iptables = ipt
  return snap
}

/** kube-proxy's nft table for n Services: the captured lab table with its `web` Service cloned n times. */
function nftNode(n: number): Snapshot {
  const snap = base()
  const doc = JSON.parse(fixture('netfilter', 'calico-vxlan-nftables', 'node1.nft.json')) as {
    nftables: Array<Record<string, any>>
  }
  const kp = doc.nftables.filter(
    (x) => (x.table ?? x.chain ?? x.rule ?? x.map ?? x.set)?.table === 'kube-proxy' || x.table?.name === 'kube-proxy',
  )
  const svc = (c: string): boolean =>
    c.startsWith('service-SUSTUHLJ') || (c.startsWith('endpoint-') && c.includes('default/web/'))
  const templateChains = kp.filter((x) => x.chain && svc(x.chain.name))
  const templateRules = kp.filter((x) => x.rule && svc(x.rule.chain))
  const map = kp.find((x) => x.map?.name === 'service-ips')!.map
  const clones: Array<Record<string, any>> = []
  services(n).forEach((s, i) => {
    const rename = (text: string): string =>
      text
        .replaceAll('SUSTUHLJ-default/web', `S${i}-bench/${s.name}`)
        .replaceAll('-default/web/', `-bench/${s.name}/`)
        .replaceAll('172.21.0.80', s.clusterIP)
    for (const x of [...templateChains, ...templateRules]) clones.push(JSON.parse(rename(JSON.stringify(x))))
    map.elem.push([
      {concat: [s.clusterIP, 'tcp', 80]},
      {goto: {target: rename('service-SUSTUHLJ-default/web/tcp/http')}},
    ])
  })
  const ruleset = parseNftRuleset(JSON.stringify({nftables: [...kp, ...clones]}))
  for (const s of Object.values(snap.nodeStates)) {
    s.nft = ruleset
    s.sections.nftables = {status: 'ok'}
  }
  return snap
}

function timeTrace(snap: Snapshot): number {
  const q = {src: 'pod-node1-1', dst: 'pod-node2-1', protocol: 'tcp' as const, port: 8080, size: 60, df: true}
  const t = traceSnapshot(snap, q).trace
  if (t.disposition !== 'DELIVERED' || t.returnPath?.disposition !== 'DELIVERED')
    throw new Error(`bench trace: ${t.disposition}/${t.returnPath?.disposition}`)
  const xs: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    traceSnapshot(snap, q)
    xs.push(performance.now() - t0)
  }
  return median(xs)
}

/** run as a script (npm run bench), not when another bench imports its node builders */
const main = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (main) report()

function report(): void {
  const empty = base()
  for (const s of Object.values(empty.nodeStates)) {
    delete s.iptables
    delete s.nft
  }
  const e = timeTrace(empty)
  const rows: string[][] = [['empty firewall', '0', `${e.toFixed(2)} ms`, '1.0×']]
  for (const [mode, make] of [
    ['iptables', iptablesNode],
    ['nftables', nftNode],
  ] as const) {
    for (const n of [SERVICES / 5, SERVICES]) {
      const t = timeTrace(make(n))
      rows.push([`kube-proxy ${mode}`, n.toLocaleString('en'), `${t.toFixed(2)} ms`, `${(t / e).toFixed(1)}×`])
    }
  }
  console.log(
    `\n### trace across nodes holding kube-proxy's rules for N Services (pod → pod on another node, tcp, both directions; median of ${RUNS})\n`,
  )
  console.log(markdownTable(['firewall', 'Services', 'trace', 'vs empty'], rows))
}
