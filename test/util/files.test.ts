import {spawn} from 'node:child_process'
import {chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {EnvironmentError} from '../../src/errors.js'
import {openUserOutput} from '../../src/util/files.js'
import {REPO} from '../helpers/cli.js'

const dir = mkdtempSync(path.join(tmpdir(), 'ex-files-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describe('openUserOutput: an -o FILE replaced whole or not at all', () => {
  it('commit replaces the file and keeps its mode; nothing else is left in the directory', async () => {
    const sub = mkdtempSync(path.join(dir, 'c-'))
    const file = path.join(sub, 'snap.json')
    writeFileSync(file, 'old\n')
    chmodSync(file, 0o640)
    const out = await openUserOutput(file)
    // until commit the old content is what a reader sees
    expect(readFileSync(file, 'utf8')).toBe('old\n')
    await out.commit('new\n')
    expect(readFileSync(file, 'utf8')).toBe('new\n')
    expect(statSync(file).mode & 0o777).toBe(0o640)
    await out.discard()
    expect(readdirSync(sub)).toEqual(['snap.json'])
  })

  it('discard leaves the file byte for byte and removes the temporary file', async () => {
    const sub = mkdtempSync(path.join(dir, 'd-'))
    const file = path.join(sub, 'snap.json')
    writeFileSync(file, 'good snapshot\n')
    const out = await openUserOutput(file)
    expect(readdirSync(sub)).toHaveLength(2)
    await out.discard()
    expect(readFileSync(file, 'utf8')).toBe('good snapshot\n')
    expect(readdirSync(sub)).toEqual(['snap.json'])
  })

  it('a directory that is not there, or a FILE that is a directory: an environment error naming it, nothing made', async () => {
    const missing = path.join(dir, 'nope', 'snap.json')
    await expect(openUserOutput(missing)).rejects.toThrow(
      new EnvironmentError(`cannot write ${missing}: no such directory ${path.join(dir, 'nope')}`),
    )
    const sub = mkdtempSync(path.join(dir, 'e-'))
    await expect(openUserOutput(sub)).rejects.toThrow(`cannot write ${sub}: it is a directory`)
    expect(readdirSync(sub)).toEqual([])
  })
  it('Ctrl-C before commit: the temporary file goes, FILE stays, and the process still dies of the signal', async () => {
    const sub = mkdtempSync(path.join(dir, 's-'))
    const file = path.join(sub, 'snap.json')
    writeFileSync(file, 'good snapshot\n')
    // the source through tsx: the build bundles this module into a chunk, it has no file of its own
    const mod = path.join(REPO, 'src', 'util', 'files.ts')
    const script = `const m = await import(${JSON.stringify(mod)}); await m.openUserOutput(${JSON.stringify(file)}); console.log('open'); setInterval(() => {}, 1000)`
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
    expect(readdirSync(sub)).toHaveLength(2)
    const ended = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_code, signal) => resolve(signal)),
    )
    child.kill('SIGINT')
    expect(await ended).toBe('SIGINT')
    expect(readdirSync(sub)).toEqual(['snap.json'])
    expect(readFileSync(file, 'utf8')).toBe('good snapshot\n')
  })
})
