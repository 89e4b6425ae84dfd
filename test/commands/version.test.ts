import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {SNAPSHOT_SCHEMA_VERSION} from '../../src/model/snapshot.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'

describe('netctl version and --version', () => {
  it("prints oclif's version line, then the snapshot schema version the snapshots carry", async () => {
    for (const argv of [['version'], ['--version']]) {
      const r = await netctl(argv)
      expect(r.code, argv.join(' ')).toBe(0)
      expect(r.stdout).toBe(
        `netctl/${process.env.npm_package_version ?? '0.1.0'} ${process.platform}-${process.arch} node-${process.version}\nsnapshot schema ${SNAPSHOT_SCHEMA_VERSION}\n`,
      )
    }
  })

  it('gives the same as JSON, as schemas/version.schema.json says', async () => {
    const {code, json} = await netctlJson(['version'])
    expect(code).toBe(0)
    const validate = validatorFor('version')
    expect(validate(json), describeSchemaError(validate.errors)).toBe(true)
    expect(json).toMatchObject({snapshotSchemaVersion: SNAPSHOT_SCHEMA_VERSION, node: process.version})
  })
})

describe('a mistyped command', () => {
  it("names the word typed (not oclif's trac:a:b id) and the closest command, as a usage error", async () => {
    const cases: [string[], string][] = [
      [
        ['trac', 'pod-a', 'pod-b'],
        "netctl: 'trac' is not a netctl command; did you mean 'trace'? See 'netctl --help'.\n",
      ],
      [
        ['lab', 'upp', '--name', 'x'],
        "netctl: 'lab upp' is not a netctl command; did you mean 'lab up'? See 'netctl lab --help'.\n",
      ],
      [
        ['backend', 'sett', 'flannel-host-gw'],
        "netctl: 'backend sett' is not a netctl command; did you mean 'backend set'? See 'netctl backend --help'.\n",
      ],
      [['qqqqqq'], "netctl: 'qqqqqq' is not a netctl command. See 'netctl --help'.\n"],
    ]
    for (const [argv, message] of cases) {
      const r = await netctl(argv)
      expect(r.code, argv.join(' ')).toBe(2)
      expect(r.stderr).toBe(message)
      expect(r.stderr).not.toMatch(/\w:\w/)
    }
  })
})

describe('shell completion (@oclif/plugin-autocomplete)', () => {
  it('completes commands and flags in a real bash, and writes a zsh completion', async () => {
    const cache = mkdtempSync(path.join(tmpdir(), 'netctl-ac-'))
    try {
      const env = {XDG_CACHE_HOME: cache}
      const setup = await netctl(['autocomplete', 'bash'], {env})
      expect(setup.code, setup.stderr).toBe(0)
      expect((await netctl(['autocomplete', 'script', 'bash'], {env})).stdout).toContain(
        path.join(cache, 'netctl/autocomplete/bash_setup'),
      )
      const fn = path.join(cache, 'netctl/autocomplete/functions/bash/netctl.bash')
      const complete = (line: string): string => {
        const words = line.split(' ')
        const script = `source "$1"; COMP_WORDS=(${words.join(' ')}); COMP_CWORD=${words.length - 1}; COMP_LINE='${line}'; COMP_POINT=\${#COMP_LINE}; _netctl_autocomplete; echo "\${COMPREPLY[*]}"`
        return spawnSync('bash', ['-c', script, 'bash', fn], {encoding: 'utf8'}).stdout.trim()
      }
      expect(complete('netctl tra')).toBe('trace')
      expect(complete('netctl lab up --pods')).toBe('--pods-per-node')
      expect(complete('netctl vers')).toBe('version')
      expect(readFileSync(path.join(cache, 'netctl/autocomplete/functions/zsh/_netctl'), 'utf8')).toContain('trace')
    } finally {
      rmSync(cache, {recursive: true, force: true})
    }
  })
})
