import {NetctlError} from '../errors.js'
import {firstLine} from '../util/exec.js'

/** One iperf3 TCP test, as the client's `-J` report tells it. */
export interface Iperf3Result {
  /** what the receiver counted (end.sum_received): the throughput that arrived */
  bitsPerSecond: number
  /** what the sender pushed (end.sum_sent) */
  senderBitsPerSecond: number
  bytes: number
  seconds: number
  /** TCP retransmissions on the sender (absent when iperf3 could not read them) */
  retransmits?: number
  /** the MSS the kernel chose for the connection (start.tcp_mss_default): pod MTU minus headers */
  tcpMSS?: number
  /** CPU use of the client (sender) and of the server (receiver), percent of one machine */
  cpu?: {senderPercent: number; receiverPercent: number}
}

/** The summary lines of `ping -q`. */
export interface PingStats {
  transmitted: number
  received: number
  /** ICMP errors received instead of replies (`+N errors`: host unreachable, frag needed, ...) */
  errors: number
  lossPercent: number
  /** absent when no reply came back */
  rttMs?: {min: number; avg: number; max: number; mdev: number}
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)

/**
 * Parse `iperf3 -c ... -J`. iperf3 3.12 reports a failure inside the JSON
 * (`"error": "unable to connect to server: ..."`) and may still exit 0, so the
 * report itself decides; a test without a receiver total is a failure too.
 */
export function parseIperf3Json(text: string): Iperf3Result {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- iperf3's JSON, each field checked where it is read
  let doc: any
  try {
    doc = JSON.parse(text)
  } catch {
    throw new NetctlError(`iperf3 printed no JSON report${firstLine(text) ? `: ${firstLine(text)}` : ''}`)
  }
  if (typeof doc?.error === 'string') throw new NetctlError(`iperf3: ${doc.error}`)
  const received = doc?.end?.sum_received
  const sent = doc?.end?.sum_sent
  const bps = num(received?.bits_per_second)
  if (bps === undefined || num(sent?.bits_per_second) === undefined)
    throw new NetctlError('iperf3: the report has no end.sum_received / end.sum_sent totals')
  const cpu = doc.end.cpu_utilization_percent
  const senderCpu = num(cpu?.host_total)
  const receiverCpu = num(cpu?.remote_total)
  const retransmits = num(sent.retransmits)
  const mss = num(doc.start?.tcp_mss_default)
  return {
    bitsPerSecond: bps,
    senderBitsPerSecond: sent.bits_per_second,
    bytes: num(received.bytes) ?? 0,
    seconds: num(received.seconds) ?? 0,
    ...(retransmits === undefined ? {} : {retransmits}),
    ...(mss === undefined ? {} : {tcpMSS: mss}),
    ...(senderCpu === undefined || receiverCpu === undefined
      ? {}
      : {cpu: {senderPercent: senderCpu, receiverPercent: receiverCpu}}),
  }
}

/**
 * Parse the statistics of iputils `ping` (with or without -q):
 *   `100 packets transmitted, 100 received, 0% packet loss, time 1720ms`
 *   `12 packets transmitted, 0 received, +12 errors, 100% packet loss, time 3054ms`
 *   `rtt min/avg/max/mdev = 0.027/0.100/0.135/0.011 ms`
 */
export function parsePingStats(text: string): PingStats {
  const counts =
    /(\d+) packets transmitted, (\d+) (?:packets )?received,(?: \+(\d+) duplicates,)?(?: \+(\d+) errors,)? ([\d.]+)% packet loss/.exec(
      text,
    )
  if (!counts) throw new NetctlError(`ping printed no statistics${firstLine(text) ? `: ${firstLine(text)}` : ''}`)
  const rtt = /(?:rtt|round-trip) min\/avg\/max\/(?:mdev|stddev) = ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(text)
  return {
    transmitted: Number(counts[1]),
    received: Number(counts[2]),
    errors: Number(counts[4] ?? 0),
    lossPercent: Number(counts[5]),
    ...(rtt ? {rttMs: {min: Number(rtt[1]), avg: Number(rtt[2]), max: Number(rtt[3]), mdev: Number(rtt[4])}} : {}),
  }
}
