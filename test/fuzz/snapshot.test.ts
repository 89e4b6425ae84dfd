/**
 * A seeded fuzzer over the snapshot loading path: recorded snapshots, mutated
 * (fields removed, wrong types, huge and empty strings, hostile names with
 * newlines and escapes, nodes listed twice, arrays cut short), are loaded as
 * `--snapshot` loads them, then checked and traced. Nothing may crash: a
 * snapshot is either refused with one line and exit 2, or analysed, and its
 * text output keeps one value per line. Most mutations run in-process; a sample
 * runs the CLI itself. NETCTL_FUZZ_SEED / NETCTL_FUZZ_RUNS pick another run.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {countFindings, runChecks} from '../../src/analyze/checks/index.js'
import {NetctlError} from '../../src/errors.js'
import {parseSnapshot, type Snapshot} from '../../src/model/snapshot.js'
import {checkText} from '../../src/render/check.js'
import {traceText} from '../../src/render/trace.js'
import {checkResult} from '../../src/services/check-result.js'
import {traceSnapshotFile} from '../../src/services/trace.js'
import {netctl} from '../helpers/cli.js'
import {fixture} from '../helpers/fixtures.js'
import {seededRandom} from '../helpers/random.js'

const SEED = Number(process.env.NETCTL_FUZZ_SEED ?? 1204)
const RUNS = Number(process.env.NETCTL_FUZZ_RUNS ?? 300)
/** every CLI_EVERY-th mutation also runs `netctl check` and `netctl trace` on the file */
const CLI_EVERY = Number(process.env.NETCTL_FUZZ_CLI_EVERY ?? 100)

const BASES = [
  'flannel-vxlan-lab.json',
  'calico-bgp-lab.json',
  'flannel-host-gw-lab.json',
  'flannel-vxlan-no-crictl.json',
].map((f) => ({file: f, text: fixture('snapshots', f)}))

type Json = null | boolean | number | string | Json[] | {[k: string]: Json}
type Path = Array<string | number>

/** Every path in the document (the root excluded), containers and leaves alike. */
function paths(v: Json, at: Path = [], out: Path[] = []): Path[] {
  if (Array.isArray(v))
    v.forEach((x, i) => {
      out.push([...at, i])
      paths(x, [...at, i], out)
    })
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) {
      out.push([...at, k])
      paths(x, [...at, k], out)
    }
  return out
}
function parentOf(doc: Json, p: Path): {parent: Json[] | {[k: string]: Json}; key: string | number} {
  let cur = doc as never as Record<string | number, Json>
  for (const k of p.slice(0, -1)) cur = cur[k] as never
  return {parent: cur as never, key: p.at(-1)!}
}

const HOSTILE = [
  'a\nb',
  '\u001b[2J\u001b[31mred',
  'x\r\u009b0m',
  '',
  ' ',
  '../../etc/passwd',
  "'; rm -rf / #",
  'n\u0000ul',
  '\u202eevil',
]

/** One mutation, named for the failure message. */
function mutate(r: () => number, doc: Json): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
  const all = paths(doc)
  // half the time aim at what analysis leans on most: nodes, pods, cluster, one node's state
  const hot = all.filter(
    (p) => ['nodes', 'pods', 'cluster', 'errors'].includes(String(p[0])) || (p[0] === 'nodeStates' && p.length <= 4),
  )
  const p = pick(r() < 0.5 && hot.length ? hot : all)
  const {parent, key} = parentOf(doc, p)
  const set = (v: Json): void => {
    ;(parent as Record<string | number, Json>)[key] = v
  }
  const kind = Math.floor(r() * 8)
  switch (kind) {
    case 0:
      if (Array.isArray(parent)) parent.splice(key as number, 1)
      else delete (parent as Record<string, Json>)[key as string]
      return `remove ${p.join('.')}`
    case 1: {
      const v = pick<Json>([42, -1, 1e308, 'text', null, true, [], {}, [1, 'two']])
      set(v)
      return `${p.join('.')} = ${JSON.stringify(v)}`
    }
    case 2:
      set('x'.repeat(100_000 + Math.floor(r() * 100_000)))
      return `${p.join('.')} = a huge string`
    case 3: {
      const v = pick(HOSTILE)
      set(v)
      return `${p.join('.')} = ${JSON.stringify(v)}`
    }
    case 4: {
      // a hostile node name, everywhere the name is a key
      const d = doc as {
        nodes: Array<{name: string}>
        nodeStates: Record<string, {node: string}>
        pods: Array<{node: string}>
      }
      const n = d.nodes[Math.floor(r() * d.nodes.length)]
      if (!n) return 'no node to rename'
      const name = `${n.name}${pick(HOSTILE)}`
      const st = d.nodeStates[n.name]
      if (st) {
        delete d.nodeStates[n.name]
        d.nodeStates[name] = {...st, node: name}
      }
      for (const pod of d.pods) if (pod.node === n.name) pod.node = name
      n.name = name
      return `rename node to ${JSON.stringify(name)}`
    }
    case 5: {
      const d = doc as {nodes: Json[]}
      if (!Array.isArray(d.nodes) || d.nodes.length === 0) return 'no node to repeat'
      d.nodes.push(structuredClone(pick(d.nodes)))
      return 'a node listed twice'
    }
    case 6: {
      const arrays = all.filter(
        (q) =>
          Array.isArray(parentOf(doc, [...q, 0]).parent) &&
          Array.isArray((parentOf(doc, q).parent as Record<string | number, Json>)[q.at(-1)!]),
      )
      const q = arrays.length ? pick(arrays) : p
      const arr = (parentOf(doc, q).parent as Record<string | number, Json>)[q.at(-1)!]
      if (Array.isArray(arr)) arr.length = Math.floor(arr.length * r())
      return `truncate ${q.join('.')}`
    }
    default: {
      // a section's status flipped: what was read is now said to be missing, or the reverse
      const d = doc as {
        nodeStates: Record<
          string,
          {sections?: Record<string, {status: string}>; pods?: Array<{sections?: Record<string, {status: string}>}>}
        >
      }
      const st = pick(Object.values(d.nodeStates ?? {}))
      const secs = r() < 0.5 ? st?.sections : st?.pods?.[0]?.sections
      if (!secs) return 'no sections'
      const name = pick(Object.keys(secs))
      const status = pick(['ok', 'absent', 'error', 'truncated'])
      if (secs[name]) secs[name]!.status = status
      return `section ${name} = ${status}`
    }
  }
}

/** A pair to trace in this snapshot: two pods, or a pod and a node, or nodes. */
function endpoints(r: () => number, s: Snapshot): [string, string] {
  const names = [...s.pods.map((p) => `${p.namespace}/${p.name}`), ...s.nodes.map((n) => n.name)]
  const pick = (): string => names[Math.floor(r() * names.length)] ?? 'nowhere'
  return [pick(), pick()]
}

/** Text output: one value per line, nothing a terminal would obey. */
function expectPrintable(text: string, what: string): void {
  for (const line of text.split('\n')) expect(line, what).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
}

function expectOneLineError(error: unknown, what: string, codes: number[]): void {
  if (!(error instanceof NetctlError)) throw new Error(`${what}: crashed: ${(error as Error)?.stack ?? String(error)}`)
  expect(error.message.split('\n'), what).toHaveLength(1)
  expect(codes, `${what}: exit ${error.exitCode}: ${error.message}`).toContain(error.exitCode)
}

describe('fuzzing the snapshot loading path', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'an-fuzz-'))
  afterAll(() => rmSync(dir, {recursive: true, force: true}))

  it(
    `${RUNS} seeded mutations (seed ${SEED}): no crash, every refusal one line with exit 2`,
    {timeout: 240_000},
    async () => {
      const r = seededRandom(SEED)
      const tally = {refused: 0, analysed: 0, cli: 0}
      const prev = process.env.NO_COLOR
      process.env.NO_COLOR = '1'
      try {
        for (let i = 0; i < RUNS; i++) {
          const base = BASES[i % BASES.length]!
          const doc = JSON.parse(base.text) as Json
          const steps = 1 + Math.floor(r() * 3)
          const did = Array.from({length: steps}, () => mutate(r, doc))
          const what = `#${i} ${base.file}: ${did.join('; ')}`
          const text = JSON.stringify(doc)
          let s: Snapshot | undefined
          try {
            s = parseSnapshot(text, 'fuzz.json')
          } catch (error) {
            expectOneLineError(error, what, [2])
            tally.refused++
          }
          if (s) {
            tally.analysed++
            let findings
            try {
              findings = runChecks(s)
            } catch (error) {
              throw new Error(`${what}: check crashed: ${(error as Error).stack}`, {cause: error})
            }
            expectPrintable(
              checkText(
                checkResult(
                  s,
                  {kind: 'snapshot', name: 'fuzz.json'},
                  s.nodes.map((n) => n.name),
                  findings,
                  countFindings(findings),
                ),
                s.nodes.length,
              ),
              what,
            )
            const [src, dst] = endpoints(r, s)
            try {
              const run = traceSnapshotFile(s, {src, dst, protocol: 'icmp', size: 84, df: false})
              expectPrintable(traceText(run.trace), what)
            } catch (error) {
              expectOneLineError(error, `${what}: trace ${src} ${dst}`, [1, 2, 3])
            }
          }
          if (i % CLI_EVERY === 0) {
            // the real thing, as a user runs it: exit codes from docs/design.md, stderr one line, no stack
            tally.cli++
            const file = path.join(dir, `m${i}.json`)
            writeFileSync(file, text)
            const [src, dst] = s ? endpoints(r, s) : ['pod-node1-1', 'pod-node2-1']
            for (const args of [
              ['check', '--snapshot', file],
              ['trace', src, dst, '--snapshot', file],
            ]) {
              const res = await netctl(args)
              const errLines = res.stderr.split('\n').filter((l) => l.trim() !== '')
              expect([0, 1, 2, 3], `${what}: netctl ${args[0]}: exit ${res.code}: ${res.stderr}`).toContain(res.code)
              expect(errLines.length, `${what}: netctl ${args[0]}: ${res.stderr}`).toBeLessThanOrEqual(1)
              expect(res.stderr, what).not.toMatch(/^\s+at /m)
              if (!s) expect(res.code, `${what}: ${res.stderr}`).toBe(2)
              expectPrintable(res.stdout, `${what}: netctl ${args[0]}`)
            }
          }
        }
      } finally {
        if (prev === undefined) delete process.env.NO_COLOR
        else process.env.NO_COLOR = prev
      }
      // the fuzzer reached both sides: refusals and analyses
      expect(tally.refused).toBeGreaterThan(RUNS / 10)
      expect(tally.analysed).toBeGreaterThan(RUNS / 10)
    },
  )
})
