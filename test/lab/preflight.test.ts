import {existsSync, mkdtempSync, rmSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, expect, it} from 'vitest'

import {listNetns} from '../../src/lab/netns-setup.js'
import {run} from '../../src/util/exec.js'
import {BIN, netctl} from '../helpers/cli.js'
import {describeLab, uniqueLabName} from '../helpers/lab.js'

describeLab('lab up refuses early, in one line', () => {
  // A PATH holding only what the lab always needs: node, sh and iproute2 and ping, but no BIRD.
  const bin = mkdtempSync(path.join(tmpdir(), 'netctl-path-'))
  for (const tool of ['sh', 'ip', 'bridge', 'ping', 'node']) {
    const where =
      tool === 'node'
        ? process.execPath
        : ['/usr/sbin', '/usr/bin', '/bin', '/sbin'].map((d) => path.join(d, tool)).find((f) => existsSync(f))!
    symlinkSync(where, path.join(bin, tool))
  }
  afterAll(() => rmSync(bin, {recursive: true, force: true}))

  it('names the missing program and the package that has it, creating nothing (environment: exit 2)', async () => {
    const name = uniqueLabName('pre')
    const r = await netctl(['lab', 'up', '--name', name, '--backend', 'calico-bgp'], {env: {PATH: bin}})
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe("netctl: missing bird, birdc: install with 'apt-get install bird2'")
    expect((await listNetns()).filter((n) => n.startsWith(`${name}.`))).toEqual([])
  })

  it('refuses a user who is not root (environment: exit 2)', async () => {
    const name = uniqueLabName('pre')
    const r = await run(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'lab', 'up', '--name', name],
      {
        env: {PATH: process.env.PATH, HOME: '/tmp', NO_COLOR: '1'},
      },
    )
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe('netctl: netctl lab needs root (it creates network namespaces): run it with sudo')
    expect((await listNetns()).filter((n) => n.startsWith(`${name}.`))).toEqual([])
  })
})
