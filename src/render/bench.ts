import type {BackendBench, BenchReport} from '../lab/bench.js'
import {colors, table} from './color.js'

/** `lab bench --json`: the report as measured (schemas/lab-bench.schema.json). */
export function benchJson(r: BenchReport): object {
  return r
}

export function formatBitrate(bps: number): string {
  if (bps >= 1e9) return `${(bps / 1e9).toFixed(2)} Gbit/s`
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)} Mbit/s`
  return `${(bps / 1e3).toFixed(1)} kbit/s`
}

export function formatMs(ms: number): string {
  return `${ms.toFixed(3)} ms`
}

/** A ratio with two decimals; below 0.1 with its first significant digits, so 0.008 does not read 0.01. */
export function formatRatio(ratio: number): string {
  return `${ratio >= 0.1 ? ratio.toFixed(2) : String(Number(ratio.toPrecision(2)))}×`
}

/** 0.62 → `0.62× (−38%)`: how much of the baseline is left, and what the path costs. */
export function formatThroughputRatio(ratio: number): string {
  const change = Math.round((ratio - 1) * 100)
  return `${formatRatio(ratio)} (${change > 0 ? '+' : change < 0 ? '−' : '±'}${Math.abs(change)}%)`
}

function mtuCell(b: BackendBench): string {
  if (!b.mtu) return '-'
  const cost = b.mtu.underlay - b.mtu.pod
  return `${b.mtu.pod}${cost > 0 ? ` (−${cost})` : ''}${b.mtu.path < b.mtu.pod ? ` path ${b.mtu.path}` : ''}`
}

function okCells(b: BackendBench): string[] {
  const cross = b.crossNode!
  return [
    b.backend,
    mtuCell(b),
    formatBitrate(cross.throughput!.bitsPerSecond),
    formatThroughputRatio(b.ratio!.throughput),
    formatMs(cross.latency!.rttMs!.avg),
    formatRatio(b.ratio!.latency),
  ]
}

const HEADER = ['BACKEND', 'POD MTU', 'THROUGHPUT CROSS-NODE', 'VS SAME-NODE', 'LATENCY AVG CROSS-NODE', 'VS SAME-NODE']

/**
 * The table, one row per backend in the order run. A failed backend keeps its
 * row, `failed: <why>` written across the measurement columns, so it neither
 * widens them nor disappears.
 */
export function benchTable(results: BackendBench[], indent = ''): string {
  const rows = results.map((b) =>
    b.status === 'ok' ? okCells(b) : [b.backend, `failed: ${b.error ?? 'unknown error'}`],
  )
  return table(HEADER, rows, indent, {spanning: true})
}

export function benchText(r: BenchReport): string {
  const c = colors()
  const ping = `${r.pingCount} pings ${r.pingIntervalSec * 1000} ms apart`
  const rounds =
    r.rounds === 1 ? 'one round' : `${r.rounds} rounds, same-node and cross-node taking turns, median shown`
  const out = [
    `${c.green('lab bench')}: iperf3 TCP for ${r.seconds} s and ${ping} per pod pair and round (${rounds}); one lab per backend, ${r.lab.nodes} nodes × ${r.lab.podsPerNode} pods on a ${r.lab.topology} underlay`,
    '',
    benchTable(r.results),
    '',
  ]
  const measured = r.results.find((b) => b.status === 'ok' || b.sameNode)
  const same = measured?.sameNode
  const cross = measured?.crossNode
  out.push(
    same && cross
      ? `baseline: the same-node pod pair ${same.from.pod} → ${same.to.pod} (both on ${same.from.node}) in each backend's own lab, same run; cross-node: ${cross.from.pod} → ${cross.to.pod}`
      : `baseline: the same-node pod pair in each backend's own lab, same run`,
  )
  out.push(
    `note: everything runs on this one machine (${r.host.cores} cores, load ${r.host.loadAverage.toFixed(1)} at the start, Linux ${r.host.kernel}, ${r.host.iperf3}): the underlay is veths and a bridge, not a wire, so these numbers measure the CPU cost of encapsulation and forwarding, not a network; other load on the machine shows up as noise`,
  )
  for (const b of r.results) for (const w of b.warnings) out.push(c.yellow(`warning: ${b.backend}: ${w}`))
  for (const s of r.skipped) out.push(`skipped: ${s.backend}: ${s.reason}`)
  return out.join('\n')
}

/** A signal stopped the bench: said on stderr, also with --json, before its labs are removed. */
export function benchInterruptedLine(signal: string, labs: string[]): void {
  process.stderr.write(
    `netctl: ${signal}: stopping the bench${labs.length ? `, removing lab ${labs.join(', ')}` : ''}\n`,
  )
}

/** A step of the bench (`[1/3] flannel-vxlan: ...`), on stderr. */
export function benchProgressLine(line: string): void {
  process.stderr.write(`  ${line}\n`)
}
