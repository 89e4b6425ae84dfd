import {execFileSync, spawnSync} from 'node:child_process'
import {cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {REPO} from '../helpers/cli.js'

/**
 * What a user gets from `npm pack` of a clean checkout installed globally into a
 * fresh prefix: every command runs, and only what runs is shipped. Slow (a real
 * npm install from the registry), so it is one test.
 */
/** A program in a directory of our choosing; the package steps run one after another anyway. */
function run(
  cmd: string,
  args: string[],
  opts: {cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number},
): {code: number; stdout: string; stderr: string} {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    timeout: opts.timeoutMs,
  })
  return {code: r.status ?? -1, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}`}
}

describe('the npm package', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'netctl-pack-'))
  afterAll(() => rmSync(work, {recursive: true, force: true}))

  it('packs from a clean checkout, installs with npm install -g, and runs every command', () => {
    // a clean checkout: the files git knows (tracked or not ignored), no dist/, no manifest; the same dependencies
    const checkout = path.join(work, 'checkout')
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], {cwd: REPO, encoding: 'utf8'})
      .split('\0')
      .filter(Boolean)
    for (const f of files) {
      mkdirSync(path.dirname(path.join(checkout, f)), {recursive: true})
      cpSync(path.join(REPO, f), path.join(checkout, f))
    }
    symlinkSync(path.join(REPO, 'node_modules'), path.join(checkout, 'node_modules'))
    const npm = (args: string[], cwd: string) => run('npm', args, {cwd, timeoutMs: 600_000})

    const packed = npm(['pack', '--pack-destination', work], checkout)
    expect(packed.code, packed.stderr).toBe(0)
    const tgz = readdirSync(work).find((f) => /^netctl-.*\.tgz$/.test(f))!
    const list = execFileSync('tar', ['tzf', path.join(work, tgz)], {encoding: 'utf8'})
      .split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ''))
    for (const f of [
      'LICENSE',
      'README.md',
      'oclif.manifest.json',
      'bin/run.js',
      'dist/commands/trace.js',
      'dist/src/main.js',
      'dist/src/lab/udp-forwarder.js',
      'dist/validators/snapshot.cjs',
      'dist/validators/inventory.cjs',
      'schemas/snapshot.schema.json',
      'docs/inventory.md',
      'docs/commands.md',
    ])
      expect(list, f).toContain(f)
    expect(
      list.filter(
        (f) =>
          f.endsWith('.map') ||
          f.endsWith('.ts') ||
          f.startsWith('test/') ||
          f === 'bin/dev.js' ||
          f === 'dist/bundle.json',
      ),
    ).toEqual([])
    expect(readFileSync(path.join(REPO, 'LICENSE'), 'utf8')).toContain(
      'Apache License\n                           Version 2.0',
    )
    // no JavaScript that names a source map (the maps and the TypeScript sources are not shipped)
    const js = list.filter((f) => f.endsWith('.js'))
    const mapped = execFileSync('tar', ['xzOf', path.join(work, tgz), ...js.map((f) => `package/${f}`)], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    })
    expect(mapped).not.toContain('sourceMappingURL')

    // exactly what a user types: npm install -g --prefix $(mktemp -d) netctl-*.tgz
    const prefix = mkdtempSync(path.join(work, 'prefix-'))
    const installed = npm(
      ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', path.join(work, tgz)],
      work,
    )
    expect(installed.code, installed.stderr).toBe(0)

    // the installed netctl on PATH, run by the Node running this test (a supported one)
    const env = {
      ...process.env,
      PATH: `${path.join(prefix, 'bin')}:${path.dirname(process.execPath)}:${process.env.PATH}`,
      NO_COLOR: '1',
    }
    delete env.NODE_ENV
    const netctl = (args: string[]) => run('netctl', args, {cwd: work, env, timeoutMs: 120_000})

    const pkg = JSON.parse(readFileSync(path.join(prefix, 'lib/node_modules/netctl/package.json'), 'utf8')) as Record<
      string,
      any
    >
    expect(pkg.repository?.url).toMatch(/^git\+https:\/\//)
    expect(pkg.homepage).toMatch(/^https:\/\//)
    expect(pkg.bugs?.url).toMatch(/^https:\/\//)

    const help = netctl(['--help'])
    expect(help.code, help.stderr).toBe(0)
    const manifest = JSON.parse(
      readFileSync(path.join(prefix, 'lib/node_modules/netctl/oclif.manifest.json'), 'utf8'),
    ) as {commands: Record<string, unknown>}
    const ids = Object.keys(manifest.commands)
    expect(ids).toEqual(
      expect.arrayContaining([
        'trace',
        'check',
        'collect',
        'explain',
        'version',
        'lab:up',
        'backend:set',
        'debug:cleanup',
      ]),
    )
    for (const id of ids) {
      const r = netctl([...id.split(':'), '--help'])
      expect(r.code, `${id}: ${r.stderr}`).toBe(0)
      expect(r.stdout, id).toContain(`$ netctl ${id.split(':').join(' ')}`)
    }
    for (const topic of ['lab', 'backend']) expect(netctl(['help', topic]).stdout).toContain(`netctl ${topic} `)

    const explain = netctl(['explain', 'FDB_MISSING'])
    expect(explain.code, explain.stderr).toBe(0)
    expect(explain.stdout).toMatch(/^FDB_MISSING\s+error/)

    const snap = path.join(REPO, 'fixtures/snapshots/flannel-vxlan-lab.json')
    const trace = netctl(['trace', '--snapshot', snap, 'pod-node1-1', 'pod-node3-2'])
    expect(trace.code, trace.stderr).toBe(0)
    expect(trace.stdout).toMatch(/^DELIVERED\s+pod-node1-1/)

    const version = netctl(['--version'])
    expect(version.stdout).toMatch(/^netctl\/\d+\.\d+\.\d+ .*\nsnapshot schema \d+\n$/)
    expect(netctl(['completion', 'fish']).stdout).toContain('complete -c netctl')
    const typo = netctl(['trac', 'pod-node1-1', 'pod-node3-2'])
    expect(typo.code).toBe(2)
    expect(typo.stderr).toContain("did you mean 'trace'?")
  }, 900_000)
})
