import {spawnSync} from 'node:child_process'
import {chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {REPO} from '../helpers/cli.js'

/**
 * The README's set-up lines must work as root without sudo (a container) and as
 * a user with sudo. The scripts run for real, with `id`, `sudo` and `apt-get`
 * replaced by stand-ins on PATH that record what they were asked.
 */
describe('set-up as root and as a user', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'netctl-setup-'))
  afterAll(() => rmSync(dir, {recursive: true, force: true}))
  const log = path.join(dir, 'log')
  const stub = (name: string, body: string) => {
    writeFileSync(path.join(dir, name), `#!/bin/bash\n${body}\n`)
    chmodSync(path.join(dir, name), 0o755)
  }
  // a user is FAKE_UID; sudo makes it 0 and runs the rest of its line
  stub('id', 'if [ "$1" = -u ]; then echo "${FAKE_UID:-0}"; else exec /usr/bin/id "$@"; fi')
  stub('apt-get', `echo "apt-get $*" >> ${log}`)
  stub('sudo-stub', `echo "sudo $*" >> ${log}; [ "$1" = -- ] && shift; FAKE_UID=0 exec "$@"`)
  symlinkSync('/bin/bash', path.join(dir, 'bash'))
  symlinkSync('/usr/bin/env', path.join(dir, 'env'))
  symlinkSync('/bin/cat', path.join(dir, 'cat'))

  const installDeps = (uid: number, withSudo: boolean) => {
    rmSync(log, {force: true})
    const bin = mkdtempSync(path.join(dir, 'bin-'))
    if (withSudo) symlinkSync(path.join(dir, 'sudo-stub'), path.join(bin, 'sudo'))
    const r = spawnSync('/bin/bash', [path.join(REPO, 'scripts/install-deps.sh')], {
      encoding: 'utf8',
      env: {PATH: `${bin}:${dir}`, FAKE_UID: String(uid)},
    })
    let calls: string[] = []
    try {
      calls = readFileSync(log, 'utf8').trim().split('\n')
    } catch {
      // no log: the script called nothing
    }
    return {code: r.status, stderr: r.stderr, calls}
  }

  it('installs the Debian packages as root without sudo being there at all', () => {
    const r = installDeps(0, false)
    expect(r.code, r.stderr).toBe(0)
    expect(r.calls[0]).toBe('apt-get update -qq')
    expect(r.calls[1]).toMatch(/^apt-get install .*iproute2 bird2 /)
  })

  it('as root, never asks sudo even when it is there', () => {
    const r = installDeps(0, true)
    expect(r.code, r.stderr).toBe(0)
    expect(r.calls.filter((c) => c.startsWith('sudo'))).toEqual([])
  })

  it('as a user, goes through sudo once, then installs as root', () => {
    const r = installDeps(1000, true)
    expect(r.code, r.stderr).toBe(0)
    expect(r.calls[0]).toBe(`sudo -- ${path.join(REPO, 'scripts/install-deps.sh')}`)
    expect(r.calls.slice(1).map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual([
      'apt-get update',
      'apt-get install',
    ])
  })

  it('as a user without sudo, says in one line that it needs root (exit 1)', () => {
    const r = installDeps(1000, false)
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('install-deps.sh: needs root, and there is no sudo: run it as root\n')
    expect(r.calls).toEqual([])
  })

  it('the demo, run by a user, goes through sudo with the PATH npm gave it (the npm-provided Node first)', () => {
    rmSync(log, {force: true})
    stub('sudo-record', `echo "sudo $*" >> ${log}`)
    const bin = mkdtempSync(path.join(dir, 'bin-'))
    symlinkSync(path.join(dir, 'sudo-record'), path.join(bin, 'sudo'))
    const PATH = `/x/node_modules/.bin:${bin}:${dir}`
    const r = spawnSync('/bin/bash', ['scripts/demo.sh'], {cwd: REPO, encoding: 'utf8', env: {PATH, FAKE_UID: '1000'}})
    expect(r.status, r.stderr).toBe(0)
    expect(readFileSync(log, 'utf8')).toBe(`sudo -- env PATH=${PATH} bash scripts/demo.sh\n`)
  })
})

describe("the README's set-up", () => {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8')
  const setup = readme.slice(readme.indexOf('## Set-up'), readme.indexOf('\n## ', readme.indexOf('## Set-up') + 1))
  const commands = [...setup.matchAll(/```sh\n(.*)\n```/g)].map((m) => m[1]!)

  it('is two commands, neither of which needs sudo to exist', () => {
    expect(commands).toHaveLength(2)
    for (const c of commands) {
      expect(c).toMatch(/^scripts\/install-deps\.sh && npm ci && npm (run demo|test)$/)
      expect(c.split(/\s+/)).not.toContain('sudo')
    }
  })

  it('is what CI runs: the installer, npm ci, then exactly the test command', () => {
    const ci = readFileSync(path.join(REPO, '.ci/run'), 'utf8')
    const steps = commands[1]!.split(' && ')
    let at = 0
    for (const step of steps) {
      const i = ci.indexOf(`\n${step}`, at)
      expect(i, step).toBeGreaterThan(-1)
      at = i
    }
  })
})
