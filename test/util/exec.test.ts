import {describe, expect, it} from 'vitest'

import {run, spawnCollect} from '../../src/util/exec.js'

describe('spawnCollect', () => {
  it('feeds the input and collects both outputs and the exit code, argv untouched by any shell', async () => {
    const r = await spawnCollect('sh', ['-c', 'cat; echo "$1" >&2; exit 3', 'sh', '$(not run) ;'], {input: 'in\n'})
    expect(r).toEqual({stdout: 'in\n', stderr: '$(not run) ;\n', code: 3})
  })

  it('kills a program that runs past its timeout and says so', async () => {
    const t0 = Date.now()
    const r = await spawnCollect('sh', ['-c', 'echo started; exec sleep 30'], {timeoutMs: 200})
    expect(r.timedOut).toBe(true)
    expect(r.stdout).toBe('started\n')
    expect(r.code).toBe(137)
    expect(Date.now() - t0).toBeLessThan(10_000)
  })

  it('with group, a grandchild holding the output open is killed too: the result comes at the timeout', async () => {
    const t0 = Date.now()
    // the background sleep keeps stdout open after sh is gone; only a group kill ends it
    const r = await spawnCollect('sh', ['-c', 'sleep 30 & echo started; wait'], {timeoutMs: 200, group: true})
    expect(r.timedOut).toBe(true)
    expect(r.stdout).toBe('started\n')
    expect(Date.now() - t0).toBeLessThan(10_000)
  })

  it('rejects with the spawn error for a program that is not there; run() makes it exit 127 as a shell does', async () => {
    await expect(spawnCollect('netctl-no-such-program', [])).rejects.toMatchObject({code: 'ENOENT'})
    expect(await run('netctl-no-such-program', [])).toEqual({
      stdout: '',
      stderr: 'netctl-no-such-program: command not found',
      code: 127,
    })
  })
})
