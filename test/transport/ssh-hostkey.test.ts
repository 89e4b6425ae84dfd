/**
 * Host-key refusals name the node and say exactly what is wrong, in one line.
 * The server is ssh2's own, in this process on 127.0.0.1: the refusal happens
 * at the key exchange, before anything would run.
 */
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'

import ssh2 from 'ssh2'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {labInventory} from '../../src/lab/inventory.js'
import {planLab} from '../../src/lab/topology.js'
import {fingerprint} from '../../src/transport/known-hosts.js'
import {netctl} from '../helpers/cli.js'

const dir = mkdtempSync(path.join(tmpdir(), 'netctl-ssh-hostkey-'))
const home = path.join(dir, 'home')
mkdirSync(path.join(home, '.ssh'), {recursive: true})

function keygen(name: string): {file: string; blob: Buffer} {
  const file = path.join(dir, name)
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file])
  return {file, blob: Buffer.from(readFileSync(`${file}.pub`, 'utf8').split(' ')[1]!, 'base64')}
}

const hostKey = keygen('host_key')
const otherKey = keygen('other_host_key')
const clientKey = keygen('id_ed25519')
let server: ssh2.Server
let port = 0

beforeAll(async () => {
  server = new ssh2.Server({hostKeys: [readFileSync(hostKey.file)]}, (client) => {
    client.on('authentication', (ctx) => ctx.accept())
    client.on('error', () => undefined)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as AddressInfo).port
})
afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()))
  rmSync(dir, {recursive: true, force: true})
})

/** An inventory of one node, worker-7, reached over ssh at the test's server (or at `host`, to be resolved by an ssh config). */
function inventory(knownHosts: string, host?: string): string {
  const plan = planLab(
    {
      name: 'tphk',
      nodes: 2,
      podsPerNode: 0,
      backend: 'flannel-vxlan',
      topology: 'flat',
      routeReflectors: 1,
      ssh: false,
    },
    dir,
  )
  const inv = labInventory(plan) as {nodes: Array<{name: string; access: object}>; pods: unknown[]}
  inv.nodes = inv.nodes.slice(0, 1)
  inv.pods = []
  inv.nodes[0]!.name = 'worker-7'
  inv.nodes[0]!.access = {
    ssh: host
      ? {host}
      : {host: '127.0.0.1', port, user: 'root', identityFile: clientKey.file, knownHostsFile: knownHosts},
  }
  const file = path.join(dir, `inventory-${host ?? ''}${path.basename(knownHosts)}.yaml`)
  writeFileSync(file, stringify(inv))
  return file
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('host keys', () => {
  it(
    'a changed host key: one line naming the node, both keys, the known_hosts line and how to remove it',
    {timeout: 60_000},
    async () => {
      const knownHosts = path.join(dir, 'known_hosts_changed')
      writeFileSync(knownHosts, `[127.0.0.1]:${port} ssh-ed25519 ${otherKey.blob.toString('base64')}\n`)
      const r = await netctl(
        [
          'collect',
          '--inventory',
          inventory(knownHosts),
          '--timeout',
          '10',
          '--output-file',
          path.join(dir, 'changed.json'),
        ],
        {env: {HOME: home, SSH_AUTH_SOCK: ''}},
      )
      expect(r.code).toBe(3)
      const name = `[127.0.0.1]:${port}`
      expect(r.stderr).toMatch(
        new RegExp(
          `^netctl: no node could be collected \\(1 unreachable\\): worker-7: ssh 127\\.0\\.0\\.1: host key changed for node worker-7 \\(${esc(name)}\\): ` +
            `it presents ssh-ed25519 ${esc(fingerprint(hostKey.blob))} but ${esc(knownHosts)} line 1 has ssh-ed25519 ${esc(fingerprint(otherKey.blob))}; ` +
            `refusing to connect \\(if the node was rebuilt, remove that line: ssh-keygen -R '${esc(name)}' -f ${esc(knownHosts)}\\)\\n$`,
        ),
      )
    },
  )

  it('an unknown host key: one line naming the node and the key it presents', {timeout: 60_000}, async () => {
    const knownHosts = path.join(dir, 'known_hosts_empty')
    writeFileSync(knownHosts, '')
    const r = await netctl(
      [
        'collect',
        '--inventory',
        inventory(knownHosts),
        '--timeout',
        '10',
        '--output-file',
        path.join(dir, 'unknown.json'),
      ],
      {env: {HOME: home, SSH_AUTH_SOCK: ''}},
    )
    expect(r.code).toBe(3)
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain(
      `worker-7: ssh 127.0.0.1: unknown host key for node worker-7 ([127.0.0.1]:${port}): it presents ssh-ed25519 ${fingerprint(hostKey.blob)}, which no known_hosts file lists; refusing to connect`,
    )
    expect(readFileSync(knownHosts, 'utf8')).toBe('')
  })
})

describe('-F / --ssh-config, as ssh -F', () => {
  it('the nodes of an inventory are resolved through that file alone', {timeout: 60_000}, async () => {
    const knownHosts = path.join(dir, 'known_hosts_f')
    writeFileSync(knownHosts, '')
    const config = path.join(dir, 'ssh_config')
    writeFileSync(
      config,
      `Host tp-alias-worker\n  HostName 127.0.0.1\n  Port ${port}\n  User root\n  IdentityFile ${clientKey.file}\n  UserKnownHostsFile ${knownHosts}\n`,
    )
    const inv = inventory(knownHosts, 'tp-alias-worker')
    for (const flag of ['-F', '--ssh-config']) {
      const r = await netctl(
        ['collect', '--inventory', inv, flag, config, '--timeout', '10', '--output-file', path.join(dir, 'f.json')],
        {env: {HOME: home, SSH_AUTH_SOCK: ''}},
      )
      expect(r.code, r.stderr).toBe(3)
      // HostName, Port and UserKnownHostsFile came from the file: the server's key was met, and it is not in that known_hosts
      expect(r.stderr).toContain(
        `worker-7: ssh tp-alias-worker: unknown host key for node worker-7 ([127.0.0.1]:${port}): it presents ssh-ed25519 ${fingerprint(hostKey.blob)}, which no known_hosts file lists; refusing to connect: check the key and add it to ${knownHosts}`,
      )
    }
  })

  it('a file that does not exist is a usage error, said once', async () => {
    const r = await netctl([
      'check',
      '--inventory',
      inventory(path.join(dir, 'kh')),
      '-F',
      path.join(dir, 'no-such-config'),
    ])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(`netctl: --ssh-config ${path.join(dir, 'no-such-config')}: no such file\n`)
  })
})
