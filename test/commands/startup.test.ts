import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {loadInventory} from '../../src/cluster/inventory.js'
import {labInventoryOf} from '../../src/lab/inventory.js'
import {netctl, REPO} from '../helpers/cli.js'
import {fixture} from '../helpers/fixtures.js'
import {loadedPackages, loadedSources, netctlImports} from '../helpers/imports.js'
import {describeLab, useLab} from '../helpers/lab.js'

/**
 * What a netctl process loads decides its start-up: each heavy package only
 * when its work is asked for (issue 13), the bare version question without
 * oclif, and no schema compiled at run time (the build compiled them).
 */
const SNAPSHOT = path.join(REPO, 'fixtures/snapshots/flannel-vxlan-lab.json')
const HEAVY = ['ssh2', '@kubernetes/client-node', 'ink', 'react']
const LAZY = /^src\/(transport\/kube-debug|cluster\/kube|render\/[^/]*-progress)/
/** ajv's compiler: the precompiled validators need only its small runtime helpers (ajv/dist/runtime/). */
const compiler = (loaded: string[]): string[] =>
  loaded.filter((u) => /\/node_modules\/ajv\/dist\/(?!runtime\/)/.test(u))

describe('lazy imports', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'netctl-startup-'))
  afterAll(() => rmSync(work, {recursive: true, force: true}))

  it.each([
    ['trace', ['trace', '--snapshot', SNAPSHOT, 'pod-node1-1', 'pod-node3-2']],
    ['trace -o json', ['trace', '--snapshot', SNAPSHOT, 'pod-node1-1', 'pod-node3-2', '-o', 'json']],
    ['check', ['check', '--snapshot', SNAPSHOT]],
    ['explain', ['explain', 'FDB_MISSING']],
  ])('%s on a saved snapshot loads no ssh2, Kubernetes client, ink, React or schema compiler', async (_what, argv) => {
    const r = await netctlImports(argv)
    expect(r.code, r.stderr).toBeLessThanOrEqual(1)
    expect(r.stdout.length).toBeGreaterThan(0)
    const packages = loadedPackages(r.loaded)
    expect(packages.has('@oclif/core'), 'the recorder sees packages').toBe(true)
    expect(HEAVY.filter((p) => packages.has(p))).toEqual([])
    expect(compiler(r.loaded)).toEqual([])
    // nor netctl's own modules that reach a cluster or draw live progress (bundled, they are chunks of their own)
    const sources = loadedSources(r.loaded)
    expect(sources, 'the recorder sees sources').toContain(`commands/${argv[0]}.ts`)
    expect(sources.filter((s) => LAZY.test(s))).toEqual([])
  })

  it('lab list loads no walker: the exit line of a backend switch (what-if-summary.ts) is not the what-if itself', async () => {
    const r = await netctlImports(['lab', 'list', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const sources = loadedSources(r.loaded)
    expect(sources, 'the recorder sees sources').toContain('commands/lab/list.ts')
    // the services' verdicts are one module (src/services/outcome.ts); only a what-if walks pairs
    expect(sources.filter((s) => s.startsWith('src/analyze/trace/') || s === 'src/backend/plan/what-if.ts')).toEqual([])
  })

  it("a bad snapshot is refused by the build's validator with the same line, still without the compiler", async () => {
    const s = JSON.parse(fixture('snapshots', 'flannel-vxlan-lab.json'))
    s.nodeStates.node1.routes[0].dst = 'default'
    const file = path.join(work, 'bad.json')
    writeFileSync(file, JSON.stringify(s))
    const r = await netctlImports(['check', '--snapshot', file])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(
      `netctl: ${file}: invalid snapshot: nodeStates.node1.routes[0].dst: must be a CIDR like 10.244.1.0/24\n`,
    )
    expect(compiler(r.loaded)).toEqual([])
    // the build's validator of a snapshot, and no other schema's code
    expect(r.loaded.filter((u) => u.includes('/dist/validators/')).map((u) => path.basename(u))).toEqual([
      'snapshot.cjs',
    ])
  })
})

describe('netctl --version', () => {
  it('answers before oclif loads, with exactly what the version command prints', async () => {
    const viaOclif = await netctl(['version', '-o', 'text'])
    expect(viaOclif.code, viaOclif.stderr).toBe(0)
    for (const argv of [['--version'], ['version']]) {
      const r = await netctlImports(argv)
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toBe(viaOclif.stdout)
      expect(r.stderr).toBe('')
      expect([...loadedPackages(r.loaded)]).toEqual([])
    }
    // anything more goes to the command itself
    const json = await netctlImports(['--version', '--json'])
    expect(JSON.parse(json.stdout)).toMatchObject({snapshotSchemaVersion: expect.any(Number)})
    expect(loadedPackages(json.loaded).has('@oclif/core')).toBe(true)
  })
})

describeLab('a live trace of a lab (issue 13: ≤ 1.3× the collection floor, start-up included)', () => {
  const lab = useLab('s7lst', ['--nodes', '3', '--backend', 'flannel-vxlan'])

  it("reads the lab's inventory from its record, the same as the file lab up wrote, without the YAML library", async () => {
    const {name, inventory} = lab.get()
    expect(await labInventoryOf(name)).toEqual(await loadInventory(inventory))
    const r = await netctlImports(['trace', 'pod-node1-1', 'pod-node3-1', '--lab', name, '--json'])
    expect([0, 1], r.stderr).toContain(r.code)
    expect(JSON.parse(r.stdout)).toMatchObject({src: {pod: 'pod-node1-1'}, dst: {pod: 'pod-node3-1'}})
    const sources = loadedSources(r.loaded)
    expect(sources, 'the recorder sees sources').toContain('commands/trace.ts')
    expect(sources.filter((s) => s.includes('node_modules/yaml/'))).toEqual([])
    // nor the text layout libraries (an Intl.Segmenter and Unicode property expressions to build): JSON is not laid out
    // (string-width's own table of East Asian widths stands for it: oclif bundles an older string-width of its own)
    expect(sources.filter((s) => s.includes('node_modules/get-east-asian-width/'))).toEqual([])
    expect(HEAVY.filter((p) => loadedPackages(r.loaded).has(p))).toEqual([])
    expect(compiler(r.loaded)).toEqual([])
  })

  it('text is still wrapped at the width, -o yaml still prints YAML, also for an error', async () => {
    const text = await netctl(['trace', 'pod-node1-1', 'pod-node3-1', '--lab', lab.get().name, '-o', 'text'], {
      env: {COLUMNS: '60'},
    })
    // text is still laid out at the width asked for
    expect(text.stdout.split('\n').filter((l) => l.length > 60)).toEqual([])
    expect(text.stdout.split('\n').length).toBeGreaterThan(5)
    const ok = await netctl(['trace', 'pod-node1-1', 'pod-node3-1', '--lab', lab.get().name, '-o', 'yaml'])
    expect(ok.stdout).toMatch(/^src:\n {2}ip: /m)
    const bad = await netctl(['trace', 'pod-node1-1', 'pod-nodeX', '--lab', lab.get().name, '-o', 'yaml'])
    expect(bad.code).toBe(2)
    expect(bad.stdout).toMatch(/^error:\n {2}code: USAGE\n/)
  })
})
