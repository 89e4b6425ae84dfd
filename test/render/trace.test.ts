import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import type {Trace} from '../../src/model/trace.js'
import {traceJson, traceText} from '../../src/render/trace.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {delivered, fdbMiss, node3} from './trace-fixtures.js'

/** Index of the first line matching, after `from`; -1 when none. */
const lineIndex = (lines: string[], re: RegExp, from = 0): number => lines.findIndex((l, i) => i >= from && re.test(l))

describe('trace as text', () => {
  const saved = {noColor: process.env.NO_COLOR, tty: process.stdout.isTTY}
  beforeEach(() => {
    process.env.NO_COLOR = '1'
  })
  afterEach(() => {
    if (saved.noColor === undefined) delete process.env.NO_COLOR
    else process.env.NO_COLOR = saved.noColor
    process.stdout.isTTY = saved.tty
  })

  it('verdict first, then the numbered path, the return path, the findings', () => {
    const lines = traceText(delivered).split('\n')
    expect(lines[0]).toBe('DELIVERED  pod-node1-1 (172.20.1.2) → pod-node3-2 (172.20.3.3)  icmp 84 bytes')
    const path = lineIndex(lines, /^Path {2}DELIVERED$/)
    const back = lineIndex(lines, /^Return path {2}DELIVERED$/)
    const findings = lineIndex(lines, /^Findings$/)
    expect(path).toBeGreaterThan(0)
    expect(back).toBeGreaterThan(path)
    expect(findings).toBeGreaterThan(back)
    expect(lines[findings + 1]).toBe('no findings')
    // every forward hop, numbered in order, each with its evidence right under it
    let at = path
    delivered.hops.forEach((hop, i) => {
      const head = lineIndex(
        lines,
        new RegExp(
          `^ {2}${i + 1} {2}${hop.node} / ${hop.netns.replace(/\./g, '\\.')} +${hop.in ?? '-'} → ${hop.out ?? '-'} +${hop.action}\\b`,
        ),
        at,
      )
      expect(head, `hop ${i + 1}`).toBeGreaterThan(at)
      expect(head).toBeLessThan(back)
      hop.evidence.forEach((e, k) => expect(lines[head + 1 + k]!.trim()).toBe(e))
      at = head
    })
    delivered.returnPath!.hops.forEach((hop, i) => {
      const head = lineIndex(lines, new RegExp(`^ {2}${i + 1} {2}${hop.node} / `), back)
      expect(head, `return hop ${i + 1}`).toBeGreaterThan(back)
      expect(head).toBeLessThan(findings)
    })
  })

  it('encap and decap hops say what the outer header is', () => {
    const text = traceText(delivered)
    expect(text).toMatch(
      new RegExp(
        ` encap {2}vxlan VNI 1 172\\.31\\.0\\.11 → ${node3.ip.replace(/\./g, '\\.')} udp/8472, 134 bytes$`,
        'm',
      ),
    )
    expect(text).toMatch(/ decap {2}inner 172\.20\.1\.2 → 172\.20\.3\.3$/m)
  })

  it('a drop: why on the second line, the hop marked, no return path, findings errors first with their fixes', () => {
    const lines = traceText(fdbMiss).split('\n')
    expect(lines[0]).toBe('FDB_MISS  pod-node1-1 (172.20.1.2) → pod-node3-2 (172.20.3.3)  icmp 84 bytes')
    expect(lines[1]).toBe('  the vxlan device does not know where to send the frame (hop 4, node1)')
    expect(lines).toContain('  4  node1 / demo.node1       cni0 → flannel.1     drop  [FDB_MISSING]')
    expect(lines).toContain('Return path  not walked: the packet did not arrive')
    const error = lineIndex(lines, /^error {3}FDB_MISSING node1: flannel\.1 → node3/)
    const warning = lineIndex(lines, /^warning VXLAN_CSUM_OFFLOAD node3/)
    expect(error).toBeGreaterThan(lineIndex(lines, /^Findings$/))
    expect(warning).toBeGreaterThan(error)
    expect(lines.slice(error, warning).join('\n')).toContain(
      `bridge fdb replace ${node3.vtepMAC} dev flannel.1 dst ${node3.ip} self permanent`,
    )
    expect(lines.at(-1)).toBe('(netctl explain FDB_MISS)')
  })

  it('INSUFFICIENT_INFO lists what was missing', () => {
    const t: Trace = {...fdbMiss, disposition: 'INSUFFICIENT_INFO', findings: [], missing: ['node3: not collected']}
    expect(traceText(t).split('\n').slice(0, 3)).toEqual([
      'INSUFFICIENT_INFO  pod-node1-1 (172.20.1.2) → pod-node3-2 (172.20.3.3)  icmp 84 bytes',
      expect.stringMatching(/^ {2}\S.* \(hop 4, node1\)$/),
      '  missing: node3: not collected',
    ])
  })

  it('tcp with a port, DF, and a pod outside the default namespace', () => {
    const t: Trace = {
      ...delivered,
      packet: {...delivered.packet, protocol: 'tcp', port: 8080, df: true},
      dst: {...delivered.dst, namespace: 'prod', pod: 'web'},
    }
    expect(traceText(t).split('\n')[0]).toBe(
      'DELIVERED  pod-node1-1 (172.20.1.2) → prod/web (172.20.3.3)  tcp/8080 84 bytes DF',
    )
  })

  it('plain text with NO_COLOR even on a terminal, and when piped', () => {
    process.stdout.isTTY = true
    expect(traceText(fdbMiss)).not.toMatch(/\u001B\[/)
    delete process.env.NO_COLOR
    process.stdout.isTTY = false
    expect(traceText(fdbMiss)).not.toMatch(/\u001B\[/)
  })
})

describe('trace as JSON', () => {
  it('is exactly the trace, and valid against schemas/trace.schema.json', () => {
    const validate = validatorFor('trace')
    for (const t of [delivered, fdbMiss]) {
      const json = JSON.parse(JSON.stringify(traceJson(t)))
      expect(json).toEqual(JSON.parse(JSON.stringify(t)))
      expect(validate(json), describeSchemaError(validate.errors)).toBe(true)
    }
  })
})
