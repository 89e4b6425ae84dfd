import {spawnSync} from 'node:child_process'
import {copyFileSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {REPO} from '../helpers/cli.js'

// docs/commands.md is generated from the built commands (npm test builds first) by `npm run docs:commands`.
describe('docs/commands.md, the command reference', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'netctl-docs-'))
  afterAll(() => rmSync(work, {recursive: true, force: true}))
  const committed = readFileSync(path.join(REPO, 'docs/commands.md'), 'utf8')

  it('is what the generator writes from the commands today (run npm run docs:commands when this fails)', () => {
    const fresh = path.join(work, 'commands.md')
    copyFileSync(path.join(REPO, 'docs/commands.md'), fresh)
    const script = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')).scripts['docs:commands'] as string
    const args = script
      .replace(/^oclif /, '')
      .split(' ')
      .map((a) => (a === 'docs/commands.md' ? fresh : a))
    const r = spawnSync(process.execPath, [path.join(REPO, 'node_modules/oclif/bin/run.js'), ...args], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 120_000,
    })
    expect(r.status, r.stderr).toBe(0)
    expect(readFileSync(fresh, 'utf8')).toBe(committed)
  })

  it('has a section for every command of the manifest', () => {
    const manifest = JSON.parse(readFileSync(path.join(REPO, 'oclif.manifest.json'), 'utf8')) as {
      commands: Record<string, unknown>
    }
    for (const id of Object.keys(manifest.commands))
      expect(committed, id).toMatch(new RegExp(`^## \`netctl ${id.split(':').join(' ')}[ \`]`, 'm'))
  })
})
