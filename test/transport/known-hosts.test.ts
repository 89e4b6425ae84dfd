import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {
  appendKnownHosts,
  checkHostKey,
  fingerprint,
  hostsFieldMatches,
  knownHostsLine,
  knownHostsName,
  knownKeyTypes,
  parseKnownHosts,
} from '../../src/transport/known-hosts.js'
import {run} from '../../src/util/exec.js'
import {REPO} from '../helpers/cli.js'

const DIR = path.join(REPO, 'fixtures/ssh')
const FILE = path.join(DIR, 'known_hosts')
const entries = parseKnownHosts(readFileSync(FILE, 'utf8'), FILE)

/** The blob of a fixture public key (keys/key-NAME.pub, written by ssh-keygen). */
function key(name: string): Buffer {
  const [, b64] = readFileSync(path.join(DIR, 'keys', `key-${name}.pub`), 'utf8')
    .trim()
    .split(/\s+/)
  return Buffer.from(b64!, 'base64')
}

/** Line number of the first fixture line containing `text`: the verdicts must point at real lines. */
function lineOf(text: string): number {
  return (
    readFileSync(FILE, 'utf8')
      .split('\n')
      .findIndex((l) => l.includes(text)) + 1
  )
}

describe('known_hosts parser', () => {
  it('keeps entries and markers, skips comments, blank, garbage, unknown markers and cut-off keys', () => {
    const text = readFileSync(FILE, 'utf8').split('\n')
    // every kept entry is exactly the line it claims to come from
    for (const e of entries) expect(text[e.line - 1]).toContain(e.key.toString('base64'))
    const lines = entries.map((e) => e.line)
    expect(lines).not.toContain(lineOf('this line is not'))
    expect(lines).not.toContain(lineOf('@bogus-marker'))
    expect(lines).not.toContain(lineOf('epsilon.example.net'))
    expect(entries.filter((e) => e.marker === 'revoked').map((e) => e.line)).toEqual([lineOf('@revoked')])
    expect(entries.filter((e) => e.marker === 'cert-authority').map((e) => e.line)).toEqual([lineOf('@cert-authority')])
    expect(entries.filter((e) => e.hosts.startsWith('|1|'))).toHaveLength(2)
  })

  it('prints fingerprints exactly as ssh-keygen -l does', () => {
    const recorded = readFileSync(path.join(DIR, 'fingerprints.txt'), 'utf8').trim().split('\n')
    expect(recorded.length).toBeGreaterThanOrEqual(6)
    for (const line of recorded) {
      const [file, , fp] = line.split(' ')
      expect(fingerprint(key(file!.replace(/^key-|\.pub$/g, '')))).toBe(fp)
    }
  })
})

describe('known_hosts matcher', () => {
  it('accepts the recorded key under any of the names of a plain line', () => {
    for (const host of ['alpha.example.net', 'ALPHA.example.NET', '198.51.100.7']) {
      const v = checkHostKey(entries, knownHostsName(host), key('ed25519-a'))
      expect(v.status).toBe('ok')
    }
  })

  it('calls another key of the same type a changed key, and points at the line', () => {
    const v = checkHostKey(entries, knownHostsName('alpha.example.net'), key('ed25519-b'))
    expect(v).toMatchObject({status: 'changed', entry: {file: FILE, line: lineOf('alpha.example.net,198.51.100.7')}})
  })

  it('keeps [host]:port entries apart from the host on port 22', () => {
    expect(knownHostsName('alpha.example.net', 2222)).toBe('[alpha.example.net]:2222')
    expect(checkHostKey(entries, knownHostsName('alpha.example.net', 2222), key('ed25519-b')).status).toBe('ok')
    expect(checkHostKey(entries, knownHostsName('alpha.example.net', 2222), key('ed25519-a'))).toMatchObject({
      status: 'changed',
      entry: {line: lineOf('[alpha.example.net]:2222')},
    })
    // the port-22 line says nothing about port 2223
    expect(checkHostKey(entries, knownHostsName('alpha.example.net', 2223), key('ed25519-a')).status).toBe('unknown')
  })

  it('matches hashed |1| names (HMAC-SHA1 of the name), including hashed [host]:port', () => {
    const hashedEcdsa = entries.find((e) => e.hosts.startsWith('|1|') && e.keyType === 'ecdsa-sha2-nistp256')!
    expect(hostsFieldMatches(hashedEcdsa.hosts, 'beta.example.net')).toBe(true)
    expect(hostsFieldMatches(hashedEcdsa.hosts, 'beta.example.org')).toBe(false)
    expect(checkHostKey(entries, knownHostsName('Beta.Example.net'), key('ecdsa')).status).toBe('ok')
    expect(checkHostKey(entries, knownHostsName('beta.example.net', 2200), key('ed25519-a')).status).toBe('ok')
    // on port 22 only the ecdsa key is known: an ed25519 key is new, not changed, and the known type is named
    expect(checkHostKey(entries, knownHostsName('beta.example.net'), key('ed25519-a'))).toEqual({
      status: 'unknown',
      otherTypes: ['ecdsa-sha2-nistp256'],
    })
    expect(knownKeyTypes(entries, knownHostsName('beta.example.net'))).toEqual(['ecdsa-sha2-nistp256'])
  })

  it('honours wildcards, and a negated pattern vetoes the line', () => {
    expect(checkHostKey(entries, 'node7.lab.example.net', key('ed25519-b')).status).toBe('ok')
    expect(checkHostKey(entries, 'bad.lab.example.net', key('ed25519-b')).status).toBe('unknown')
    expect(hostsFieldMatches('node?.lab,10.1.*', 'node3.lab')).toBe(true)
    expect(hostsFieldMatches('node?.lab,10.1.*', 'node33.lab')).toBe(false)
    expect(hostsFieldMatches('node?.lab,10.1.*', '10.1.2.3')).toBe(true)
    // dots are literal, not regex wildcards
    expect(hostsFieldMatches('a.b', 'axb')).toBe(false)
  })

  it('refuses a @revoked key for every host, even one that lists it', () => {
    const v = checkHostKey(
      [
        ...entries,
        ...parseKnownHosts(
          `alpha.example.net ${readFileSync(path.join(DIR, 'keys/key-revoked.pub'), 'utf8')}`,
          'extra',
        ),
      ],
      'alpha.example.net',
      key('revoked'),
    )
    expect(v).toMatchObject({status: 'revoked', entry: {line: lineOf('@revoked')}})
    expect(checkHostKey(entries, 'anything.example.org', key('revoked')).status).toBe('revoked')
  })

  it('does not take a @cert-authority key for a host key', () => {
    expect(checkHostKey(entries, 'alpha.example.net', key('ca'))).toMatchObject({status: 'changed'})
    expect(checkHostKey(entries, 'zeta.example.net', key('ca'))).toEqual({status: 'unknown', otherTypes: []})
  })

  it('treats RSA and ed25519 as different types', () => {
    expect(checkHostKey(entries, 'gamma.example.net', key('rsa')).status).toBe('ok')
    expect(checkHostKey(entries, 'gamma.example.net', key('ed25519-a'))).toEqual({
      status: 'unknown',
      otherTypes: ['ssh-rsa'],
    })
  })
})

describe('known_hosts writer', () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'netctl-kh-'))
  afterAll(() => rmSync(tmp, {recursive: true, force: true}))

  it('writes plain and hashed lines that read back, and that ssh-keygen -F finds', async () => {
    const file = path.join(tmp, 'sub', 'known_hosts')
    await appendKnownHosts(file, knownHostsLine(['[node1.example.net]:2200'], key('ed25519-a')))
    await appendKnownHosts(file, knownHostsLine(['198.51.100.9'], key('ecdsa'), true))
    const back = parseKnownHosts(readFileSync(file, 'utf8'), file)
    expect(back).toHaveLength(2)
    expect(back[1]!.hosts).toMatch(/^\|1\|/)
    expect(checkHostKey(back, knownHostsName('node1.example.net', 2200), key('ed25519-a')).status).toBe('ok')
    expect(checkHostKey(back, '198.51.100.9', key('ecdsa')).status).toBe('ok')

    const keygen = await run('ssh-keygen', ['-F', '198.51.100.9', '-f', file])
    if (keygen.code === 127) return // no OpenSSH client here: the checks above still ran
    expect(keygen.stdout).toContain(key('ecdsa').toString('base64'))
    const port = await run('ssh-keygen', ['-F', '[node1.example.net]:2200', '-f', file])
    expect(port.stdout).toContain(key('ed25519-a').toString('base64'))
  })
})
