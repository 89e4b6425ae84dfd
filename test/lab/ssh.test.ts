import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, afterEach, beforeAll, expect, it} from 'vitest'
import {parse} from 'yaml'

import type {Inventory} from '../../src/model/inventory.js'
import {SshTransport, type SshTransportOptions} from '../../src/transport/ssh.js'
import {TransportError} from '../../src/transport/types.js'
import {run} from '../../src/util/exec.js'
import {validatorFor} from '../../src/util/schema.js'
import {describeLab, ipJson, type LabUp, nsExec, useLab} from '../helpers/lab.js'

type SshLab = LabUp & {ssh: {config: string; knownHosts: string; identity: string}}

/** Plain OpenSSH, as a user would type it; no agent, nothing from ~/.ssh (-F replaces it). */
function openssh(config: string, host: string, command: string) {
  const env = {...process.env}
  delete env.SSH_AUTH_SOCK
  return run('ssh', ['-F', config, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', host, command], {
    timeoutMs: 30_000,
    env,
  })
}

/** Expect `p` to fail with a TransportError of `reason`; its message is one line and is returned. */
async function refused(p: Promise<unknown>, reason: TransportError['reason']): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(TransportError)
  expect((err as TransportError).reason).toBe(reason)
  const message = (err as Error).message
  expect(message).not.toContain('\n')
  return message
}

async function hostKeyFingerprint(stateDir: string, node: string): Promise<string> {
  const r = await run('ssh-keygen', ['-lf', path.join(stateDir, 'nodes', node, 'ssh', 'ssh_host_ed25519_key.pub')])
  return r.stdout.split(' ')[1]!
}

describeLab('lab up --ssh and the ssh transport', () => {
  const lab = useLab('ssh', ['--nodes', '3', '--pods-per-node', '0', '--ssh'])
  const get = (): SshLab => lab.get() as SshLab
  let tmp = ''
  const open: SshTransport[] = []
  /** A transport that is closed after the test, also when a test fails. Never an agent: only the files under test. */
  const transport = (o: SshTransportOptions): SshTransport => {
    const t = new SshTransport({agent: false, connectTimeoutMs: 15_000, ...o})
    open.push(t)
    return t
  }
  const node = (name: string) => get().nodes.find((n) => n.name === name)!

  beforeAll(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'netctl-ssh-test-'))
  })
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()))
  })
  afterAll(() => {
    if (tmp) rmSync(tmp, {recursive: true, force: true})
  })

  it('lab up --json names the ssh files, and the inventory carries ssh access', () => {
    const validate = validatorFor('lab-up')
    expect(validate(lab.get()), JSON.stringify(validate.errors)).toBe(true)
    const l = get()
    expect(l.ssh.config).toBe(path.join(l.stateDir, 'ssh', 'ssh_config'))
    for (const f of [l.ssh.config, l.ssh.knownHosts, l.ssh.identity, `${l.ssh.identity}.pub`])
      expect(existsSync(f)).toBe(true)
    const inv = parse(readFileSync(l.inventory, 'utf8')) as Inventory
    for (const n of l.nodes) {
      const access = inv.nodes.find((x) => x.name === n.name)!.access
      expect(access.netns).toBe(n.netns)
      expect(access.ssh).toMatchObject({
        host: n.ip,
        user: 'root',
        port: 22,
        identityFile: l.ssh.identity,
        knownHostsFile: l.ssh.knownHosts,
      })
      expect(access.ssh!.proxyCommand).toContain(n.netns)
    }
  })

  it('plain OpenSSH logs in to every node with the lab ssh_config, by name and by lab alias', async () => {
    const l = get()
    for (const n of l.nodes) {
      for (const host of [n.name, `${l.name}-${n.name}`]) {
        const r = await openssh(l.ssh.config, host, 'ip netns identify')
        expect(r.stderr).toBe('')
        expect(r.stdout.trim()).toBe(n.netns)
      }
    }
  })

  it('runs a script on each node through the ProxyCommand: the node reports its InternalIP, as the kernel does', async () => {
    const l = get()
    await Promise.all(
      l.nodes.map(async (n) => {
        const t = transport({host: n.name, configFile: l.ssh.config})
        const r = await t.exec('ip -j addr show dev eth0')
        expect(r.code).toBe(0)
        const remote = JSON.parse(r.stdout) as Array<{
          addr_info: Array<{family: string; local: string; prefixlen: number}>
        }>
        const local = remote[0]!.addr_info.filter((a) => a.family === 'inet')
        expect(local.map((a) => a.local)).toEqual([n.ip])
        // the same answer the kernel gives from outside the session
        const kernel = await ipJson<typeof remote>(n.netns, ['addr', 'show', 'dev', 'eth0'])
        expect(local).toEqual(kernel[0]!.addr_info.filter((a) => a.family === 'inet'))
      }),
    )
  })

  it('reuses one connection per node and queues channels beyond its bound (more than sshd MaxSessions at once)', async () => {
    const l = get()
    const t = transport({host: 'node1', configFile: l.ssh.config, maxChannels: 3})
    const results = await Promise.all(Array.from({length: 15}, (_, i) => t.exec(`sleep 0.1; echo ${i}`)))
    expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({length: 15}, (_, i) => String(i)))
    expect(results.every((r) => r.code === 0)).toBe(true)
    // count the sessions sshd sees while this transport is open: one TCP connection
    const ss = await nsExec(node('node1').netns, ['ss', '-Htn', 'state', 'established', '( sport = :22 )'])
    expect(ss.stdout.trim().split('\n').filter(Boolean)).toHaveLength(1)
  })

  it('reaches the inventory nodes with no ssh config at all', async () => {
    const l = get()
    const inv = parse(readFileSync(l.inventory, 'utf8')) as Inventory
    for (const n of inv.nodes) {
      const t = transport({...n.access.ssh!, configFile: '/dev/null'})
      const r = await t.exec('ip netns identify')
      expect(r.stdout.trim()).toBe(n.access.netns)
    }
  })

  it('sends the script as data: quotes and $( ) in an echo come back literally', async () => {
    const l = get()
    const marker = path.join(tmp, 'touched')
    const t = transport({host: 'node2', configFile: l.ssh.config})
    const r = await t.exec(`echo "'; \\$(touch ${marker})"\necho '"; $(touch ${marker})'`)
    expect(r.stdout).toBe(`'; $(touch ${marker})\n"; $(touch ${marker})\n`)
    expect(existsSync(marker)).toBe(false)
  })

  it('passes stdin and exit codes through, and reports a timeout without losing the connection', async () => {
    const l = get()
    const t = transport({host: 'node2', configFile: l.ssh.config})
    expect(await t.exec('cat; exit 5', {stdin: 'from the caller\n'})).toEqual({
      stdout: 'from the caller\n',
      stderr: '',
      code: 5,
    })
    // the budget covers opening a channel and starting a shell too: on a loaded CI machine that alone can take seconds
    const slow = await t.exec('echo started; sleep 60', {timeoutMs: 8000})
    expect(slow.timedOut).toBe(true)
    expect(slow.stdout).toBe('started\n')
    expect((await t.exec('echo again')).stdout).toBe('again\n')
  })

  it('ProxyJump: reaches node2 through node1 (node2 has its IP as HostName and no ProxyCommand)', async () => {
    const l = get()
    const n1 = node('node1')
    const n2 = node('node2')
    const common = [
      'User root',
      `IdentityFile ${l.ssh.identity}`,
      'IdentitiesOnly yes',
      `UserKnownHostsFile ${l.ssh.knownHosts}`,
      'StrictHostKeyChecking yes',
    ]
    const config = path.join(tmp, 'jump_config')
    writeFileSync(
      config,
      [
        'Host node1',
        `  HostName ${n1.ip}`,
        `  ProxyCommand ip netns exec ${n1.netns} nc 127.0.0.1 %p`,
        ...common.map((c) => `  ${c}`),
        'Host node2',
        `  HostName ${n2.ip}`,
        '  ProxyJump node1',
        ...common.map((c) => `  ${c}`),
        '',
      ].join('\n'),
    )
    const t = transport({host: 'node2', configFile: config})
    const r = await t.exec('ip netns identify; echo "$SSH_CONNECTION"')
    const [netns, connection] = r.stdout.trim().split('\n')
    expect(netns).toBe(n2.netns)
    // the session came in over the underlay, from node1
    expect(connection!.split(' ')[0]).toBe(n1.ip)
    expect(connection!.split(' ')[2]).toBe(n2.ip)
    // OpenSSH agrees the config means that
    const o = await openssh(config, 'node2', 'echo "$SSH_CONNECTION"')
    expect(o.stdout.split(' ')[0]).toBe(n1.ip)
  })

  it('refuses a changed host key in one line with the fingerprint, as OpenSSH does', async () => {
    const l = get()
    const lines = readFileSync(l.ssh.knownHosts, 'utf8').trim().split('\n')
    const other = lines
      .find((x) => x.startsWith('node3,'))!
      .split(' ')
      .slice(1)
      .join(' ')
    const changed = lines.map((x) => (x.startsWith('node2,') ? `${x.split(' ')[0]} ${other}` : x))
    const knownHosts = path.join(tmp, 'known_hosts_changed')
    writeFileSync(knownHosts, `${changed.join('\n')}\n`)
    const message = await refused(
      transport({host: 'node2', configFile: l.ssh.config, knownHostsFile: knownHosts, acceptNewHostKeys: true}).exec(
        'true',
      ),
      'hostkey-changed',
    )
    expect(message).toContain('ssh node2: host key changed')
    expect(message).toContain(await hostKeyFingerprint(l.stateDir, 'node2'))
    expect(message).toContain(knownHosts)
    // the other nodes' lines are intact and still work with the same file
    expect(
      (await transport({host: 'node1', configFile: l.ssh.config, knownHostsFile: knownHosts}).exec('echo ok')).stdout,
    ).toBe('ok\n')
    const config = path.join(tmp, 'changed_config')
    writeFileSync(config, readFileSync(l.ssh.config, 'utf8').replaceAll(l.ssh.knownHosts, knownHosts))
    const o = await openssh(config, 'node2', 'true')
    expect(o.code).not.toBe(0)
    expect(o.stderr).toContain('REMOTE HOST IDENTIFICATION HAS CHANGED')
  })

  it('refuses an unknown host key by default; acceptNewHostKeys records it where ssh-keygen finds it', async () => {
    const l = get()
    const n3 = node('node3')
    const knownHosts = path.join(tmp, 'known_hosts_empty')
    writeFileSync(knownHosts, '')
    const message = await refused(
      transport({host: 'node3', configFile: l.ssh.config, knownHostsFile: knownHosts}).exec('true'),
      'hostkey-unknown',
    )
    expect(message).toContain(await hostKeyFingerprint(l.stateDir, 'node3'))
    expect(message).toContain(n3.ip)
    expect(readFileSync(knownHosts, 'utf8')).toBe('')

    const r = await transport({
      host: 'node3',
      configFile: l.ssh.config,
      knownHostsFile: knownHosts,
      acceptNewHostKeys: true,
    }).exec('ip netns identify')
    expect(r.stdout.trim()).toBe(n3.netns)
    const found = await run('ssh-keygen', ['-F', n3.ip, '-f', knownHosts])
    expect(found.code).toBe(0)
    const recorded = readFileSync(
      path.join(l.stateDir, 'nodes', 'node3', 'ssh', 'ssh_host_ed25519_key.pub'),
      'utf8',
    ).split(' ')[1]!
    expect(found.stdout).toContain(recorded)
    // now known: a strict transport connects
    expect(
      (await transport({host: 'node3', configFile: l.ssh.config, knownHostsFile: knownHosts}).exec('echo ok')).stdout,
    ).toBe('ok\n')
  })

  it('says authentication failed, naming the key, for a wrong identity', async () => {
    const l = get()
    const wrong = path.join(tmp, 'id_wrong')
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrong])
    const config = path.join(tmp, 'wrong_config')
    writeFileSync(config, readFileSync(l.ssh.config, 'utf8').replaceAll(l.ssh.identity, wrong))
    const message = await refused(transport({host: 'node1', configFile: config}).exec('true'), 'auth')
    expect(message).toContain('authentication failed for root@')
    expect(message).toContain(wrong)
    expect((await openssh(config, 'node1', 'true')).stderr).toContain('Permission denied')
  })

  // last: it stops node3's sshd
  it('reports a node whose sshd is stopped as unreachable, while the other nodes still answer', async () => {
    const l = get()
    const pidFile = path.join(l.stateDir, 'nodes', 'node3', 'ssh', 'sshd.pid')
    const pid = Number(readFileSync(pidFile, 'utf8').trim())
    expect(Number.isInteger(pid) && pid > 1).toBe(true)
    process.kill(pid, 'SIGTERM')
    for (let i = 0; i < 50; i++) {
      try {
        process.kill(pid, 0)
        await new Promise((r) => setTimeout(r, 100))
      } catch {
        break
      }
    }
    const [dead, ...alive] = await Promise.allSettled(
      ['node3', 'node1', 'node2'].map((h) =>
        transport({host: h, configFile: l.ssh.config, connectTimeoutMs: 5000}).exec('ip netns identify', {
          timeoutMs: 20_000,
        }),
      ),
    )
    expect(dead!.status).toBe('rejected')
    const message = await refused(Promise.reject((dead as PromiseRejectedResult).reason), 'unreachable')
    expect(message).toMatch(/^ssh node3: cannot connect to 172\.31\.\d+\.\d+ port 22 through ProxyCommand/)
    expect(alive.map((a) => (a.status === 'fulfilled' ? a.value.stdout.trim() : String(a.reason)))).toEqual([
      node('node1').netns,
      node('node2').netns,
    ])
  })
})
