import {existsSync} from 'node:fs'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {DAEMON_READY_MS, QUICK_CHECK_TIMEOUT_MS} from '../defaults.js'
import {EnvironmentError, NetctlError} from '../errors.js'
import {firstLine, mapLimit, run, runOk} from '../util/exec.js'
import {pollUntil} from '../util/wait.js'
import {execIn} from './netns-setup.js'
import type {LabNode, LabPlan} from './types.js'

/** Where a lab's ssh client side lives: one key pair, known_hosts and an ssh_config for the whole lab. */
export interface LabSshPaths {
  dir: string
  /** `ssh -F <config> node1` */
  config: string
  knownHosts: string
  /** the client's private key (the public key is beside it, .pub) */
  identity: string
}

/** A node's sshd files, under the node's own directory. */
export interface NodeSshPaths {
  dir: string
  hostKey: string
  config: string
  authorizedKeys: string
  pidFile: string
  log: string
}

export const LAB_SSH_PORT = 22
export const LAB_SSH_USER = 'root'

export function labSshPaths(stateDir: string): LabSshPaths {
  const dir = path.join(stateDir, 'ssh')
  return {
    dir,
    config: path.join(dir, 'ssh_config'),
    knownHosts: path.join(dir, 'known_hosts'),
    identity: path.join(dir, 'id_ed25519'),
  }
}

export function nodeSshPaths(node: LabNode): NodeSshPaths {
  const dir = path.join(node.dir, 'ssh')
  return {
    dir,
    hostKey: path.join(dir, 'ssh_host_ed25519_key'),
    config: path.join(dir, 'sshd_config'),
    authorizedKeys: path.join(dir, 'authorized_keys'),
    pidFile: path.join(dir, 'sshd.pid'),
    log: path.join(dir, 'sshd.log'),
  }
}

/** The stream a client uses to reach a node's sshd: a TCP connection made inside the node's namespace. */
export function labProxyCommand(node: Pick<LabNode, 'netns'>): string {
  return `ip netns exec ${node.netns} nc 127.0.0.1 %p`
}

/**
 * sshd_config and ssh_config take unquoted words; a path with spaces, quotes
 * or '%' (a token in both) would change meaning, so refuse such a state dir.
 */
function plainPath(p: string): string {
  if (!/^[A-Za-z0-9_./@+,:-]+$/.test(p))
    throw new EnvironmentError(
      `lab --ssh needs a state directory path without spaces or special characters, got '${p}' (set NETCTL_STATE_DIR)`,
    )
  return p
}

function sshdConfig(plan: LabPlan, node: LabNode): string {
  const p = nodeSshPaths(node)
  return [
    `# sshd of ${node.name} in lab ${plan.name} (written by netctl lab up --ssh): key-only, root, inside ${node.netns}`,
    `Port ${LAB_SSH_PORT}`,
    // every address of the namespace, so that another node can log in too (a jump host)
    'ListenAddress 0.0.0.0',
    `HostKey ${plainPath(p.hostKey)}`,
    `AuthorizedKeysFile ${plainPath(p.authorizedKeys)}`,
    `PidFile ${plainPath(p.pidFile)}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    // the lab's files live under a state dir whose ownership sshd would otherwise insist on
    'StrictModes no',
    // ProxyJump opens direct-tcpip channels through a node
    'AllowTcpForwarding yes',
    'X11Forwarding no',
    'PrintMotd no',
    'UseDNS no',
    '',
  ].join('\n')
}

function sshClientConfig(plan: LabPlan, paths: LabSshPaths): string {
  const blocks = plan.nodes.map((node) =>
    [
      `Host ${node.name} ${plan.name}-${node.name}`,
      `  HostName ${node.ip}`,
      `  Port ${LAB_SSH_PORT}`,
      `  User ${LAB_SSH_USER}`,
      `  IdentityFile ${plainPath(paths.identity)}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${plainPath(paths.knownHosts)}`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      `  ProxyCommand ${labProxyCommand(node)}`,
    ].join('\n'),
  )
  return [
    `# ssh config of lab ${plan.name} (written by netctl lab up --ssh)`,
    `# ssh -F ${paths.config} node1    # no route into the lab needed: each node is reached through ip netns exec + nc`,
    '',
    blocks.join('\n\n'),
    '',
  ].join('\n')
}

async function keygen(file: string, comment: string): Promise<string> {
  await rm(file, {force: true})
  await rm(`${file}.pub`, {force: true})
  await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file])
  return (await readFile(`${file}.pub`, 'utf8')).trim()
}

/** The key part (`type base64`) of a .pub line, without its comment. */
function publicKey(pubLine: string): string {
  return pubLine.split(/\s+/).slice(0, 2).join(' ')
}

function sshdPath(): string {
  // sshd re-executes itself and insists on an absolute path
  for (const p of ['/usr/sbin/sshd', '/usr/local/sbin/sshd', '/sbin/sshd']) if (existsSync(p)) return p
  throw new EnvironmentError("sshd not found: install with 'apt-get install openssh-server'")
}

async function waitForSshd(node: LabNode, timeoutMs: number): Promise<void> {
  await pollUntil(
    async () =>
      (
        await execIn(node.netns, ['nc', '-z', '-w', '1', '127.0.0.1', String(LAB_SSH_PORT)], {
          timeoutMs: QUICK_CHECK_TIMEOUT_MS,
        })
      ).code === 0
        ? true
        : undefined,
    {
      timeoutMs,
      intervalMs: 100,
      reason: async () => {
        const log = nodeSshPaths(node).log
        const why = existsSync(log) ? firstLine((await readFile(log, 'utf8')).split('\n').reverse().join('\n')) : ''
        return `sshd of ${node.name} does not answer on 127.0.0.1:${LAB_SSH_PORT} in ${node.netns}${why ? `: ${why}` : ''}`
      },
    },
  )
}

/**
 * `lab up --ssh`: a client key pair, one host key and one key-only sshd per
 * node (listening inside the node's namespace), a known_hosts naming every
 * node by name, lab-qualified alias and InternalIP, and an ssh_config whose
 * ProxyCommand enters the node's namespace, so `ssh -F <config> node1` works
 * from the root namespace without any route into the lab.
 */
export async function startLabSsh(plan: LabPlan): Promise<void> {
  const paths = labSshPaths(plan.stateDir)
  const sshd = sshdPath()
  await mkdir(paths.dir, {recursive: true, mode: 0o700})
  // sshd's privilege separation directory; it refuses to start without it
  await mkdir('/run/sshd', {recursive: true, mode: 0o755})

  const clientKey = publicKey(await keygen(paths.identity, `netctl-lab-${plan.name}`))
  const hostKeys = await mapLimit(plan.nodes, 4, async (node) => {
    const p = nodeSshPaths(node)
    await mkdir(p.dir, {recursive: true, mode: 0o700})
    const hostKey = publicKey(await keygen(p.hostKey, `root@${node.name}.${plan.name}`))
    await writeFile(p.authorizedKeys, `${clientKey} netctl-lab-${plan.name}\n`, {mode: 0o600})
    await writeFile(p.config, sshdConfig(plan, node), {mode: 0o600})
    return hostKey
  })

  const knownHosts = plan.nodes.map((node, i) => `${node.name},${plan.name}-${node.name},${node.ip} ${hostKeys[i]}`)
  await writeFile(paths.knownHosts, `${knownHosts.join('\n')}\n`, {mode: 0o600})
  await writeFile(paths.config, sshClientConfig(plan, paths), {mode: 0o600})

  await mapLimit(plan.nodes, 4, async (node) => {
    const p = nodeSshPaths(node)
    // sshd forks into the background; it stays in the namespace, where lab down finds and stops it
    const r = await run('ip', ['netns', 'exec', node.netns, sshd, '-f', p.config, '-E', p.log], {
      timeoutMs: DAEMON_READY_MS,
    })
    if (r.code !== 0) {
      const log = existsSync(p.log) ? firstLine(await readFile(p.log, 'utf8')) : ''
      throw new NetctlError(
        `sshd failed to start in ${node.netns}: ${firstLine(r.stderr) || log || `exit ${r.code}`} (config: ${p.config})`,
      )
    }
  })
  await mapLimit(plan.nodes, 4, (node) => waitForSshd(node, DAEMON_READY_MS))
}
