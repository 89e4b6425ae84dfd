import {readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import type {BenchReport} from '../../src/lab/bench.js'
import {
  benchTable,
  benchText,
  formatBitrate,
  formatMs,
  formatRatio,
  formatThroughputRatio,
} from '../../src/render/bench.js'
import {validatorFor} from '../../src/util/schema.js'
import {REPO} from '../helpers/cli.js'

/** `lab bench --name bnc --seconds 5 --rounds 5 --ping-count 200 --json`, a real run on a branch where Calico was not built yet. */
const load = (): BenchReport =>
  JSON.parse(readFileSync(path.join(REPO, 'fixtures/bench/lab-bench-report.json'), 'utf8')) as BenchReport

describe('lab bench report', () => {
  it('the recorded run is valid against schemas/lab-bench.schema.json', () => {
    const validate = validatorFor('lab-bench')
    expect(validate(load()), JSON.stringify(validate.errors)).toBe(true)
  })

  it('the schema wants every measurement of an ok backend, and a reason for a failed one', () => {
    const validate = validatorFor('lab-bench')
    const okRow = load().results.find((b) => b.status === 'ok')!
    const failedRow = load().results.find((b) => b.status === 'failed')!
    const withResults = (row: object): object => ({...load(), results: [row]})
    expect(validate(withResults({...okRow, ratio: undefined}))).toBe(false)
    expect(validate(withResults({...okRow, crossNode: {...okRow.crossNode, throughput: undefined}}))).toBe(false)
    expect(validate(withResults({...okRow, error: 'both'}))).toBe(false)
    expect(validate(withResults({...failedRow, error: undefined}))).toBe(false)
    expect(validate(withResults(failedRow))).toBe(true)
  })

  it('prints one row per backend in run order, the cross-node numbers and their ratios to the same-node baseline', () => {
    const report = load()
    const lines = benchTable(report.results).split('\n')
    expect(lines).toHaveLength(1 + report.results.length)
    const mtuColumn = lines[0]!.indexOf('POD MTU')
    for (const [i, b] of report.results.entries()) {
      const line = lines[i + 1]!
      expect(line.startsWith(b.backend)).toBe(true)
      if (b.status === 'ok') {
        expect(line).toContain(formatBitrate(b.crossNode!.throughput!.bitsPerSecond))
        expect(b.ratio!.throughput).toBeCloseTo(
          b.crossNode!.throughput!.bitsPerSecond / b.sameNode!.throughput!.bitsPerSecond,
          3,
        )
        expect(line).toContain(formatThroughputRatio(b.ratio!.throughput))
        expect(line).toContain(formatMs(b.crossNode!.latency!.rttMs!.avg))
        expect(line.endsWith(formatRatio(b.ratio!.latency))).toBe(true)
        expect(line.slice(mtuColumn)).toMatch(new RegExp(`^${b.mtu!.pod}\\b`))
      } else {
        // written across the measurement columns, starting where POD MTU does
        expect(line.slice(mtuColumn)).toBe(`failed: ${b.error}`)
      }
    }
  })

  it('says which pair is the baseline and that one machine measures CPU, not a wire', () => {
    const report = load()
    const text = benchText(report)
    const same = report.results.find((b) => b.status === 'ok')!.sameNode!
    expect(text).toContain(`baseline: the same-node pod pair ${same.from.pod} → ${same.to.pod}`)
    expect(text).toMatch(/measure the CPU cost of encapsulation/)
    expect(text).toContain(`${report.host.cores} cores`)
  })

  it('formats rates and ratios for people', () => {
    expect(formatBitrate(6_249_143_206)).toBe('6.25 Gbit/s')
    expect(formatBitrate(100_952_400)).toBe('101.0 Mbit/s')
    expect(formatThroughputRatio(0.834)).toBe('0.83× (−17%)')
    expect(formatThroughputRatio(1.02)).toBe('1.02× (+2%)')
    expect(formatThroughputRatio(0.008)).toBe('0.008× (−99%)')
    expect(formatRatio(45.569)).toBe('45.57×')
  })
})
