import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {labInventory} from '../../src/lab/inventory.js'
import {planLab} from '../../src/lab/topology.js'
import {netctl} from '../helpers/cli.js'

const dir = mkdtempSync(path.join(tmpdir(), 'netctl-ssh-proxy-'))
/** pids of the children the ProxyCommands forked, ended here should a run leave them behind */
const forked: number[] = []
afterAll(() => {
  for (const pid of forked) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      /* gone, as it should be */
    }
  }
  rmSync(dir, {recursive: true, force: true})
})

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  // a zombie has exited; only its parent has not reaped it yet
  return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
}

/** Poll until fn() holds or the bound passes; returns whether it held. */
async function eventually(fn: () => boolean, boundMs: number): Promise<boolean> {
  const until = Date.now() + boundMs
  while (!fn()) {
    if (Date.now() > until) return false
    await new Promise((r) => setTimeout(r, 50))
  }
  return true
}

const home = path.join(dir, 'home')
mkdirSync(path.join(home, '.ssh'), {recursive: true})
const key = path.join(dir, 'id_ed25519')
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])

let runs = 0
/**
 * An inventory whose one node is reached through a ProxyCommand that forks a
 * long sleep, writes its pid, and never speaks ssh: the handshake times out.
 */
function forkingInventory(): {file: string; pidFile: string} {
  const n = ++runs
  const pidFile = path.join(dir, `child-${n}.pid`)
  const plan = planLab(
    {
      name: `tpproxy${n}`,
      nodes: 2,
      podsPerNode: 0,
      backend: 'flannel-vxlan',
      topology: 'flat',
      routeReflectors: 1,
      ssh: false,
    },
    dir,
  )
  const inv = labInventory(plan) as {nodes: Array<{access: object}>; pods: unknown[]}
  inv.nodes = inv.nodes.slice(0, 1)
  inv.pods = []
  inv.nodes[0]!.access = {
    ssh: {
      host: 'node1.invalid',
      user: 'root',
      identityFile: key,
      knownHostsFile: path.join(dir, 'known_hosts'),
      proxyCommand: `sh -c 'sleep 3600 & echo $! > ${pidFile}; wait'`,
    },
  }
  const file = path.join(dir, `inventory-${n}.yaml`)
  writeFileSync(file, stringify(inv))
  return {file, pidFile}
}

describe('a ProxyCommand that forks', () => {
  it.each([
    ['collect', ['collect', '--output-file', path.join(dir, 'snap.json')]],
    ['check', ['check']],
    ['backend get', ['backend', 'get']],
  ])(
    '%s exits in bounded time, and the child the ProxyCommand forked is gone',
    {timeout: 60_000},
    async (_what, args) => {
      const {file, pidFile} = forkingInventory()
      const r = await netctl([...args, '--inventory', file, '--timeout', '2'], {
        env: {HOME: home, SSH_AUTH_SOCK: ''},
        timeoutMs: 30_000,
      })
      expect(existsSync(pidFile)).toBe(true)
      const child = Number(readFileSync(pidFile, 'utf8').trim())
      forked.push(child)
      expect(r.timedOut, `netctl ${args[0]} still running after 30 s (stderr: ${r.stderr})`).toBeUndefined()
      expect(r.code).toBe(3)
      expect(r.stdout + r.stderr).toMatch(/ssh node1\.invalid: /)
      expect(await eventually(() => !alive(child), 3000)).toBe(true)
    },
  )
})
