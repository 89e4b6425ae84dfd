/**
 * `check` on big clusters with clashing podCIDRs (no root needed).
 *
 *   node --import tsx bench/check-scale.ts        (BENCH_RUNS=N, default 3)
 *
 * Each case writes a snapshot of N Node objects (not collected: the nodes'
 * addressing alone), then, in a fresh Node process so that peak memory is the
 * case's own, loads it the way `--snapshot` does, runs every check and renders
 * the text report. The baseline is 300 nodes sharing one podCIDR; 3,000
 * nodes sharing one podCIDR must cost about ten times that, not a hundred
 * (one finding per shared subnet, not one per pair of holders).
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {cpus, loadavg, tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {markdownTable, median} from './util.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3))

interface Case {
  label: string
  nodes: number
  /** every node the same subnet, or one each */
  shared: boolean
}

const CASES: Case[] = [
  {label: '300 nodes, one shared podCIDR (baseline)', nodes: 300, shared: true},
  {label: '3,000 nodes, one shared podCIDR', nodes: 3000, shared: true},
  {label: '3,000 nodes, a podCIDR each', nodes: 3000, shared: false},
]

interface Measure {
  ms: number
  maxRssMB: number
  findings: number
  textBytes: number
}

function snapshotFile(dir: string, c: Case): string {
  const base = JSON.parse(readFileSync(path.join(REPO, 'fixtures/snapshots/flannel-host-gw-lab.json'), 'utf8'))
  base.cluster.clusterCIDR = '10.128.0.0/9'
  base.nodes = Array.from({length: c.nodes}, (_, i) => ({
    name: `node-${i}`,
    internalIP: `172.31.${i >> 8}.${i & 255}`,
    podCIDRs: [c.shared ? '10.244.1.0/24' : `10.${128 + (i >> 8)}.${i & 255}.0/24`],
    annotations: {},
    labels: {},
  }))
  base.nodeStates = {}
  base.errors = []
  base.pods = []
  const file = path.join(dir, `${c.nodes}-${c.shared ? 'shared' : 'distinct'}.json`)
  writeFileSync(file, JSON.stringify(base))
  return file
}

/** The child: load, check, render, report. */
async function measureOne(file: string): Promise<Measure> {
  const {loadSnapshot} = await import('../src/model/snapshot.js')
  const {runChecks, countFindings} = await import('../src/analyze/checks/index.js')
  const {checkText} = await import('../src/render/check.js')
  const {checkResult} = await import('../src/services/check-result.js')
  const {validatorFor} = await import('../src/util/schema.js')
  // compiling the schema is the same for every size: outside the measure
  validatorFor('snapshot')
  const t0 = performance.now()
  const s = await loadSnapshot(file)
  const findings = runChecks(s)
  const text = checkText(
    checkResult(
      s,
      {kind: 'snapshot', name: file},
      s.nodes.map((n) => n.name),
      findings,
      countFindings(findings),
    ),
    s.nodes.length,
  )
  const ms = performance.now() - t0
  return {
    ms,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    findings: findings.length,
    textBytes: Buffer.byteLength(text),
  }
}

if (process.argv[2] === '--measure') {
  process.stdout.write(JSON.stringify(await measureOne(process.argv[3]!)))
} else {
  const dir = mkdtempSync(path.join(tmpdir(), 'check-scale-'))
  try {
    const files = CASES.map((c) => snapshotFile(dir, c))
    const runs: Measure[][] = CASES.map(() => [])
    // interleaved, so that load from elsewhere falls on every case alike
    for (let r = 0; r < RUNS; r++) {
      files.forEach((file, i) => {
        const p = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--measure', file], {
          cwd: REPO,
          encoding: 'utf8',
          env: {...process.env, NO_COLOR: '1'},
        })
        if (p.status !== 0) throw new Error(`${CASES[i]!.label}: exit ${p.status}: ${p.stderr.trim().split('\n')[0]}`)
        runs[i]!.push(JSON.parse(p.stdout) as Measure)
      })
    }
    const med = runs.map((ms) => ({
      ms: median(ms.map((m) => m.ms)),
      rss: median(ms.map((m) => m.maxRssMB)),
      findings: ms[0]!.findings,
      bytes: ms[0]!.textBytes,
    }))
    const base = med[0]!
    console.log(
      `\n### check on big clusters (\`bench/check-scale.ts\`) (${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(2)}, medians of ${RUNS} runs)\n`,
    )
    console.log(
      markdownTable(
        ['snapshot', 'findings', 'text output', 'load + check + render', 'ratio', 'peak memory (RSS)', 'ratio'],
        CASES.map((c, i) => {
          const m = med[i]!
          return [
            c.label,
            String(m.findings),
            `${(m.bytes / 1024).toFixed(1)} KB`,
            `${m.ms.toFixed(0)} ms`,
            `${(m.ms / base.ms).toFixed(2)}x`,
            `${m.rss.toFixed(0)} MB`,
            `${(m.rss / base.rss).toFixed(2)}x`,
          ]
        }),
      ),
    )
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}
