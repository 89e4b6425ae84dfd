import {existsSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import {remoteCommand, wrapScript} from '../../src/transport/ssh.js'
import {run} from '../../src/util/exec.js'

/** Feed the wrapped script to a local `sh -s` exactly as sshd's shell would get it. */
function viaSh(script: string, stdin?: string) {
  return run('sh', ['-c', remoteCommand()], {input: wrapScript(script, stdin)})
}

describe('the script sent to sh -s', () => {
  it('is parsed whole before it runs: a command reading stdin cannot eat the rest of the script', async () => {
    const r = await viaSh('cat\necho after')
    expect(r).toMatchObject({stdout: 'after\n', code: 0})
  })

  it('hands the caller stdin to the script, also when it contains the here-document tag', async () => {
    const r = await viaSh('cat; echo "exit=$?"', 'one\nNETCTL_STDIN\nthree')
    expect(r.stdout).toBe('one\nNETCTL_STDIN\nthree\nexit=0\n')
  })

  it('keeps the exit status, and the script needs no trailing newline', async () => {
    expect((await viaSh('echo hi; exit 7')).code).toBe(7)
    expect((await viaSh('false')).code).toBe(1)
  })

  it('carries quotes and $( ) as data: a script echoing them prints them literally', async () => {
    const marker = `/tmp/netctl-ssh-script-${process.pid}`
    const r = await viaSh(`echo "'; \\$(touch ${marker})"\necho '"; $(touch ${marker})'`)
    expect(r.stdout).toBe(`'; $(touch ${marker})\n"; $(touch ${marker})\n`)
    expect(existsSync(marker)).toBe(false)
  })

  it('runs under timeout(1) only when a deadline is given, a little after it', () => {
    expect(remoteCommand()).toBe('sh -s')
    expect(remoteCommand(5000)).toContain('exec timeout -s KILL 7 sh -s')
  })
})
