import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'

/**
 * `netctl completion fish`, tried in a real fish (scripts/install-deps.sh
 * installs it): the script parses (fish -n) and completes what a user types.
 */
const hasFish = spawnSync('fish', ['--version']).status === 0

describe('netctl completion fish', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'netctl-fish-'))
  const script = path.join(dir, 'netctl.fish')
  afterAll(() => rmSync(dir, {recursive: true, force: true}))
  beforeAll(async () => {
    const r = await netctl(['completion', 'fish'])
    expect(r.code, r.stderr).toBe(0)
    writeFileSync(script, r.stdout)
  })

  /** fish's own answer for a command line: the candidates, without their descriptions. */
  const complete = (line: string): string[] => {
    const r = spawnSync('fish', ['--no-config', '-c', 'source $argv[1]; complete -C $argv[2]', script, line], {
      encoding: 'utf8',
    })
    expect(r.status, r.stderr).toBe(0)
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t')[0]!)
  }

  it('is installed here (scripts/install-deps.sh)', () => {
    expect(hasFish, 'fish is missing: run scripts/install-deps.sh').toBe(true)
  })

  it.runIf(hasFish)('parses (fish -n)', () => {
    const r = spawnSync('fish', ['--no-config', '-n', script], {encoding: 'utf8'})
    expect(r.status, r.stderr).toBe(0)
  })

  it.runIf(hasFish)('completes commands, topics, flags and their values', () => {
    expect(complete('netctl tra')).toEqual(['trace'])
    expect(complete('netctl ')).toEqual(
      expect.arrayContaining(['trace', 'check', 'collect', 'lab', 'backend', 'explain', 'version', 'completion']),
    )
    expect(complete('netctl lab ')).toEqual(['bench', 'down', 'kube-proxy', 'list', 'policy', 'status', 'up'])
    expect(complete('netctl lab kube-proxy ')).toEqual(['sync'])
    expect(complete('netctl lab policy ')).toEqual(['apply', 'delete', 'list'])
    expect(complete('netctl lab up --pods')).toEqual(['--pods-per-node'])
    expect(complete('netctl lab up --backend ')).toEqual(expect.arrayContaining(['flannel-vxlan', 'calico-bgp']))
    expect(complete('netctl trace pod-a pod-b -o ').sort()).toEqual(['dot', 'json', 'mermaid', 'text', 'yaml'])
    expect(complete('netctl check -o ').sort()).toEqual(['json', 'text', 'yaml'])
    expect(complete('netctl backend set ')).toEqual(expect.arrayContaining(['flannel-host-gw', 'calico-vxlan']))
    // a flag of one command is not offered on another
    expect(complete('netctl check --pods')).toEqual([])
    // a file flag completes files
    expect(complete(`netctl check --snapshot ${dir}/netctl.f`)).toEqual([script])
  })

  it('bash and zsh point at netctl autocomplete; -o json carries the script', async () => {
    const bash = await netctl(['completion', 'bash'])
    expect(bash.code).toBe(2)
    expect(bash.stderr).toContain('netctl autocomplete bash')
    const {code, json} = await netctlJson(['completion', 'fish'])
    expect(code).toBe(0)
    const validate = validatorFor('completion')
    expect(validate(json), describeSchemaError(validate.errors)).toBe(true)
    expect(json.script).toBe((await netctl(['completion', 'fish'])).stdout)
  })
})
