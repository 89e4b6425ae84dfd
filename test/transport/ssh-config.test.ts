import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {expandTokens, loadSshConfig, parseJump, resolveHost} from '../../src/transport/ssh-config.js'
import {TransportError} from '../../src/transport/types.js'
import {run} from '../../src/util/exec.js'
import {REPO} from '../helpers/cli.js'

const DIR = path.join(REPO, 'fixtures/ssh')
const config = loadSshConfig(path.join(DIR, 'ssh_config'))
const home = os.homedir()
const me = os.userInfo().username

describe('ssh config resolution (fixtures/ssh/ssh_config)', () => {
  it('takes the first value obtained, from the Host block and then Host *', () => {
    const h = resolveHost(config, 'jumped')
    expect(h).toMatchObject({
      hostname: '198.51.100.20',
      port: 22,
      user: 'netops',
      connectTimeoutMs: 7000,
      strictHostKeyChecking: 'accept-new',
    })
    expect(h.userKnownHostsFiles).toEqual([
      path.join(home, '.ssh/known_hosts_198.51.100.20'),
      '/etc/netctl/known_hosts',
    ])
    expect(h.identityFiles).toEqual([path.join(home, `.ssh/id_${me}`)])
  })

  it('lets ProxyJump and ProxyCommand compete: whichever comes first wins', () => {
    const jumped = resolveHost(config, 'jumped')
    expect(jumped.proxyJump).toEqual([{host: 'bastion', user: 'ops', port: 2201}, {host: 'edge'}])
    expect(jumped.proxyCommand).toBeUndefined()
    const proxied = resolveHost(config, 'proxied')
    expect(proxied.proxyJump).toEqual([])
    expect(proxied.proxyCommand).toBe('ssh -W 198.51.100.21:22 bastion')
    const direct = resolveHost(config, 'direct')
    expect(direct.proxyJump).toEqual([])
    expect(direct.proxyCommand).toBeUndefined()
  })

  it('accumulates IdentityFile lines and expands their tokens; reads HostKeyAlias and IdentitiesOnly', () => {
    const h = resolveHost(config, 'bastion')
    expect(h).toMatchObject({
      port: 2200,
      identitiesOnly: true,
      identitiesExplicit: true,
      strictHostKeyChecking: 'yes',
      hostKeyAlias: 'bastion-key',
    })
    expect(h.identityFiles).toEqual([path.join(home, '.ssh/bastion_netops'), path.join(home, `.ssh/id_${me}`)])
  })

  it('honours negated Host patterns', () => {
    expect(resolveHost(config, 'www.example.net')).toMatchObject({user: 'ops', hashKnownHosts: true})
    expect(resolveHost(config, 'secret.example.net')).toMatchObject({user: 'netops', hashKnownHosts: false})
  })

  it('lets explicit options beat the file, like ssh -o', () => {
    const h = resolveHost(config, 'bastion', {
      user: 'admin',
      port: 2300,
      identityFile: '/keys/admin',
      proxyCommand: 'nc %h %p',
      knownHostsFile: '/kh',
    })
    expect(h).toMatchObject({
      user: 'admin',
      port: 2300,
      proxyCommand: 'nc 198.51.100.1 2300',
      userKnownHostsFiles: ['/kh'],
    })
    expect(h.identityFiles[0]).toBe('/keys/admin')
  })

  it('shell-quotes every substituted name in ProxyCommand: a hostile HostName stays one word', async () => {
    const marker = '/tmp/netctl-never'
    rmSync(marker, {force: true})
    const h = resolveHost(config, 'odd')
    const r = await run('sh', ['-c', `exec ${h.proxyCommand}`])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`it's$(touch ${marker}).example.net|2022|o'brien|odd\n`)
    expect(existsSync(marker)).toBe(false)
  })

  it('refuses unknown %-tokens with a config error', () => {
    expect(() => resolveHost(config, 'badtoken')).toThrowError(TransportError)
    try {
      resolveHost(config, 'badtoken')
    } catch (error) {
      expect((error as TransportError).reason).toBe('config')
      expect((error as Error).message).toContain('%z')
    }
    expect(expandTokens('a%%b%h', {h: 'x'}, 'test')).toBe('a%bx')
  })

  it('parses ProxyJump hops in every spelling', () => {
    expect(parseJump('ops@bastion:2201')).toEqual({host: 'bastion', user: 'ops', port: 2201})
    expect(parseJump('ssh://ops@bastion')).toEqual({host: 'bastion', user: 'ops'})
    expect(parseJump('[fe80::1]:2222')).toEqual({host: 'fe80::1', port: 2222})
    expect(parseJump('edge')).toEqual({host: 'edge'})
  })
})

describe('ssh config files', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'netctl-sshcfg-'))
  afterAll(() => rmSync(tmp, {recursive: true, force: true}))

  it('follows Include with a glob', () => {
    const file = path.join(tmp, 'config')
    writeFileSync(file, `Include ${path.join(DIR, 'config.d')}/*.conf\nInclude ${path.join(DIR, 'ssh_config')}\n`)
    const c = loadSshConfig(file)
    expect(resolveHost(c, 'edge')).toMatchObject({hostname: '198.51.100.2', user: 'edgeuser'})
    expect(resolveHost(c, 'jumped').proxyJump.map((j) => j.host)).toEqual(['bastion', 'edge'])
  })

  it('says which -F file is missing', () => {
    try {
      loadSshConfig(path.join(tmp, 'nope'))
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(TransportError)
      expect((error as TransportError).reason).toBe('config')
      expect((error as Error).message).toContain(path.join(tmp, 'nope'))
    }
  })
})
