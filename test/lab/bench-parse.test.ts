import {readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {parseIperf3Json, parsePingStats} from '../../src/lab/bench-parse.js'
import {REPO} from '../helpers/cli.js'

const fixture = (name: string): string => readFileSync(path.join(REPO, 'fixtures/bench', name), 'utf8')

describe('iperf3 -J report', () => {
  it('takes the receiver total as the throughput, with the sender side, MSS and CPU beside it', () => {
    const text = fixture('iperf3-flannel-vxlan-cross-node.json')
    const doc = JSON.parse(text)
    const r = parseIperf3Json(text)
    expect(r.bitsPerSecond).toBe(doc.end.sum_received.bits_per_second)
    expect(r.senderBitsPerSecond).toBe(doc.end.sum_sent.bits_per_second)
    expect(r.bytes).toBe(doc.end.sum_received.bytes)
    expect(r.seconds).toBe(doc.end.sum_received.seconds)
    expect(r.retransmits).toBe(doc.end.sum_sent.retransmits)
    expect(r.cpu).toEqual({
      senderPercent: doc.end.cpu_utilization_percent.host_total,
      receiverPercent: doc.end.cpu_utilization_percent.remote_total,
    })
    // captured in a flannel vxlan lab: pod MTU 1450 less IP (20), TCP (20) and timestamps (12)
    expect(r.tcpMSS).toBe(1450 - 20 - 20 - 12)
  })

  it('reads the same-node pair of that lab with the same MSS: flannel gives cni0 and every pod veth the vxlan MTU', () => {
    const same = parseIperf3Json(fixture('iperf3-flannel-vxlan-same-node.json'))
    const cross = parseIperf3Json(fixture('iperf3-flannel-vxlan-cross-node.json'))
    expect(same.tcpMSS).toBe(cross.tcpMSS)
    expect(same.bitsPerSecond).toBeGreaterThan(0)
  })

  it('turns the error iperf3 writes into its report (and exits 0 with) into a one-line failure', () => {
    expect(() => parseIperf3Json(fixture('iperf3-connection-refused.json'))).toThrow(
      /^iperf3: unable to connect to server: Connection refused$/,
    )
  })

  it('refuses output that is not a report', () => {
    expect(() => parseIperf3Json('iperf3: error - unable to connect to server: No route to host\n')).toThrow(
      /no JSON report: iperf3: error - unable to connect/,
    )
    expect(() => parseIperf3Json('{"start": {}, "end": {}}')).toThrow(/no end.sum_received/)
  })
})

describe('ping statistics', () => {
  it('reads counts and min/avg/max/mdev of a fast ping (-i 0.01)', () => {
    expect(parsePingStats(fixture('ping-flannel-vxlan-cross-node.txt'))).toEqual({
      transmitted: 100,
      received: 100,
      errors: 0,
      lossPercent: 0,
      rttMs: {min: 0.027, avg: 0.1, max: 0.135, mdev: 0.011},
    })
    expect(parsePingStats(fixture('ping-flannel-vxlan-same-node.txt')).rttMs?.avg).toBe(0.057)
  })

  it('has no rtt when nothing came back, and counts ICMP errors', () => {
    expect(parsePingStats(fixture('ping-no-reply.txt'))).toEqual({
      transmitted: 179,
      received: 0,
      errors: 0,
      lossPercent: 100,
    })
    expect(parsePingStats(fixture('ping-host-unreachable.txt'))).toEqual({
      transmitted: 12,
      received: 0,
      errors: 12,
      lossPercent: 100,
    })
  })

  it('refuses output without statistics', () => {
    expect(() => parsePingStats('ping: connect: Network is unreachable\n')).toThrow(
      /no statistics: ping: connect: Network is unreachable/,
    )
  })
})
