/**
 * Records fixtures/analyze/*.json from real namespaces: a flannel-vxlan and a
 * routed flannel-host-gw lab node, and the scenario namespaces of
 * fib-scenarios.ts. Each fixture holds what `ip -j` printed (the model's
 * input), the plain-text `ip route` / `ip rule` / `ip neigh` lines (the
 * formatters' reference), and `ip route get` answers for a spread of packets
 * (the kernel's verdicts, replayed by fib.test.ts without root).
 *
 *   npm run build && sudo npx tsx test/analyze/record-fib-fixtures.ts
 *
 * Everything it makes is named fib-rec-*, lives in namespaces, and is removed
 * at the end, also on failure.
 */
import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {compileFib} from '../../src/analyze/fib.js'
import {run} from '../../src/util/exec.js'
import {netctl, netctlJson, REPO} from '../helpers/cli.js'
import {fibStateFromIpJson, type RawIpState, readRawIpState, settleAddresses} from '../helpers/ip-json.js'
import type {LabUp} from '../helpers/lab.js'
import {defaultsScenario, deleteNamespaces, policyScenario, proxyArpScenario, type Scenario} from './fib-scenarios.js'
import {
  type KernelAnswer,
  kernelRouteGetMany,
  labSpread,
  type RecordedQuery,
  type SpreadOptions,
  spreadQueries,
} from './kernel-oracle.js'

const OUT = path.join(REPO, 'fixtures/analyze')
/** fields of an `ip route get` answer the comparison reads */
const KEEP = ['type', 'dst', 'from', 'gateway', 'dev', 'prefsrc', 'table', 'iif']
const MAX_QUERIES = 300

async function ipText(netns: string, args: string[]): Promise<string> {
  const r = await run('ip', ['-n', netns, ...args])
  return r.stdout
}

function trim(k: KernelAnswer): KernelAnswer {
  if (k.error) return {error: k.error}
  return {route: Object.fromEntries(Object.entries(k.route ?? {}).filter(([key]) => KEEP.includes(key)))}
}

/** Every error answer and every outcome shape, plus an even stride through the rest, up to MAX_QUERIES. */
function sample(all: RecordedQuery[]): RecordedQuery[] {
  const shape = (r: RecordedQuery) =>
    r.kernel.error
      ? `e:${r.kernel.error}`
      : `${r.kernel.route?.type ?? 'unicast'}:${r.kernel.route?.dev}:${r.kernel.route?.table ?? ''}:${r.query.iif ? 'in' : 'out'}`
  const seen = new Set<string>()
  const keep = new Set<number>()
  all.forEach((r, i) => {
    if (!seen.has(shape(r))) {
      seen.add(shape(r))
      keep.add(i)
    }
  })
  const stride = Math.max(1, Math.ceil(all.length / (MAX_QUERIES - keep.size)))
  for (let i = 0; i < all.length && keep.size < MAX_QUERIES; i += stride) keep.add(i)
  return all.filter((_, i) => keep.has(i))
}

/** ip -j output and the text lines of the same moment: read JSON, text, JSON until both JSON reads agree. */
async function stableRead(
  netns: string,
): Promise<{ip: RawIpState; text: {route4: string; rule4: string; neigh: string}}> {
  await settleAddresses(netns)
  for (let attempt = 0; ; attempt++) {
    const ip = await readRawIpState(netns)
    const text = {
      route4: await ipText(netns, ['-4', 'route', 'show', 'table', 'all']),
      rule4: await ipText(netns, ['-4', 'rule', 'show']),
      neigh: (await ipText(netns, ['neigh', 'show', 'nud', 'all'])) + (await ipText(netns, ['neigh', 'show', 'proxy'])),
    }
    const again = await readRawIpState(netns)
    if (JSON.stringify(ip) === JSON.stringify(again) || attempt >= 20) return {ip, text}
    await new Promise((r) => setTimeout(r, 200))
  }
}

async function record(
  file: string,
  netns: string,
  description: string,
  spreads: SpreadOptions[],
  extra: Record<string, unknown> = {},
): Promise<void> {
  const {ip, text: lines} = await stableRead(netns)
  const state = fibStateFromIpJson(ip)
  compileFib(state)
  const queries = spreads.flatMap((s) => spreadQueries(state, s))
  const answers = await kernelRouteGetMany(netns, queries)
  const recorded = sample(queries.map((query, i) => ({query, kernel: trim(answers[i] as KernelAnswer)})))
  const uname = (await run('uname', ['-r'])).stdout.trim()
  const iproute2 = (await run('ip', ['-V'])).stdout.trim()
  const fixture = {
    description,
    recorded: {kernel: uname, iproute2, netns: netns.replace(/^fib-rec-[a-z0-9]+/, '<lab>')},
    ip,
    text: lines,
    ...extra,
    queries: recorded,
  }
  await writeFile(path.join(OUT, file), compactJson(fixture))
  console.log(`${file}: ${recorded.length} of ${queries.length} queries`)
}

/** Pretty at the top two levels, one line per array element below: small, and still diffable. */
function compactJson(value: Record<string, unknown>): string {
  const inner = (v: unknown, indent: string): string => {
    if (Array.isArray(v))
      return v.length === 0 ? '[]' : `[\n${v.map((x) => `${indent}  ${JSON.stringify(x)}`).join(',\n')}\n${indent}]`
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const entries = Object.entries(v as Record<string, unknown>)
      return `{\n${entries.map(([k, x]) => `${indent}  ${JSON.stringify(k)}: ${Array.isArray(x) ? inner(x, `${indent}  `) : JSON.stringify(x)}`).join(',\n')}\n${indent}}`
    }
    return JSON.stringify(v)
  }
  const top = Object.entries(value).map(([k, v]) => `  ${JSON.stringify(k)}: ${inner(v, '  ')}`)
  return `{\n${top.join(',\n')}\n}\n`
}

async function ping(netns: string, ip: string): Promise<boolean> {
  const r = await run('ip', ['netns', 'exec', netns, 'ping', '-n', '-q', '-c', '1', '-W', '1', ip], {timeoutMs: 10_000})
  return r.code === 0
}

async function labUp(name: string, args: string[]): Promise<LabUp> {
  const r = await netctlJson<LabUp>(['lab', 'up', '--name', name, ...args])
  if (r.code !== 0) throw new Error(`lab up ${name}: ${r.stderr}`)
  return r.json
}

async function main(): Promise<void> {
  await mkdir(OUT, {recursive: true})
  const tag = `fib-rec-${process.pid.toString(36)}`
  const labs = [`${tag}a`, `${tag}b`]
  const scenarios: Scenario[] = [policyScenario(`${tag}s`), defaultsScenario(`${tag}s`), proxyArpScenario(`${tag}s`)]
  try {
    const vx = await labUp(labs[0] as string, ['--backend', 'flannel-vxlan', '--nodes', '3', '--pods-per-node', '1'])
    const n1 = vx.nodes[0]!
    const pings: Array<{dst: string; ok: boolean}> = []
    for (const dst of [...vx.pods.map((p) => p.ip), ...vx.nodes.slice(1).map((n) => n.ip), '172.31.0.200'])
      pings.push({dst, ok: await ping(n1.netns, dst)})
    await record(
      'flannel-vxlan-node1.json',
      n1.netns,
      'flannel vxlan, flat underlay, 3 nodes: node1 (after pinging every pod, both peers and an absent on-link address)',
      [labSpread(vx, 'node1')],
      {pings},
    )
    await record(
      'flannel-vxlan-pod.json',
      vx.pods[0]!.netns,
      'flannel vxlan: a pod of node1 (default via the cni0 address)',
      [labSpread(vx, 'node1')],
    )

    const hg = await labUp(labs[1] as string, [
      '--backend',
      'flannel-host-gw',
      '--topology',
      'routed',
      '--nodes',
      '3',
      '--pods-per-node',
      '1',
    ])
    await record(
      'flannel-host-gw-routed-node1.json',
      hg.nodes[0]!.netns,
      'flannel host-gw, routed underlay: node1 (subnet a; a host-gw route to node2, node3 only via the default route)',
      [labSpread(hg, 'node1')],
    )
    await record(
      'flannel-host-gw-routed-node3.json',
      hg.nodes[2]!.netns,
      'flannel host-gw, routed underlay: node3 (alone on subnet b; its host-gw routes were refused)',
      [labSpread(hg, 'node3')],
    )

    for (const sc of scenarios) await sc.build()
    await record('policy-x1.json', scenarios[0]!.subject, scenarios[0]!.description, scenarios[0]!.spread)
    await record('defaults-x2.json', scenarios[1]!.subject, scenarios[1]!.description, scenarios[1]!.spread)
    const x3 = scenarios[2]!
    const [host, , podA, podB, podC] = x3.namespaces as [string, string, string, string, string]
    const arp: Array<{pod: string; sender: string; dev: string; pinged: boolean}> = []
    for (const [pod, sender, dev] of [
      [podA, '172.28.1.5', 'cali1'],
      [podB, '172.28.1.6', 'cali2'],
      [podC, '172.28.1.7', 'cali3'],
    ] as const) {
      arp.push({pod: pod.replace(/^.*\./, ''), sender, dev, pinged: await ping(pod, '172.28.0.2')})
    }
    await record('proxy-arp-host-x3.json', host, x3.description, x3.spread, {arp})
    for (const pod of [podA, podB])
      await record(
        `proxy-arp-pod-${pod.replace(/^.*\./, '')}.json`,
        pod,
        `${x3.description}: pod ${pod.replace(/^.*\./, '')} after pinging 172.28.0.2`,
        [{dsts: ['172.28.0.2', '169.254.1.1']}],
      )
  } finally {
    for (const sc of scenarios) await deleteNamespaces(sc.namespaces)
    for (const l of labs) await netctl(['lab', 'down', '--name', l])
  }
}

await main()
