import {EnvironmentError} from '../errors.js'
import {run} from '../util/exec.js'
import {isCalico} from './topology.js'
import type {LabOptions} from './types.js'

/** Programs `lab up` needs for these options, with the Debian package that has each. */
export function requiredTools(o: Pick<LabOptions, 'backend' | 'ssh'>): Array<{tool: string; pkg: string}> {
  const tools = [
    {tool: 'ip', pkg: 'iproute2'},
    {tool: 'bridge', pkg: 'iproute2'},
    {tool: 'ping', pkg: 'iputils-ping'},
  ]
  if (isCalico(o.backend)) tools.push({tool: 'bird', pkg: 'bird2'}, {tool: 'birdc', pkg: 'bird2'})
  if (o.backend === 'flannel-udp') tools.push({tool: 'socat', pkg: 'socat'})
  if (o.ssh)
    tools.push(
      {tool: 'sshd', pkg: 'openssh-server'},
      {tool: 'ssh-keygen', pkg: 'openssh-client'},
      {tool: 'nc', pkg: 'netcat-openbsd'},
    )
  return tools
}

async function which(tool: string): Promise<boolean> {
  // The lab runs these by name, so they must be on PATH exactly as the user has it.
  const r = await run('sh', ['-c', 'command -v "$1"', 'sh', tool])
  return r.code === 0
}

/** Refuse early, with one line naming what is wrong: not root, or a missing program. */
export async function labPreflight(o: Pick<LabOptions, 'backend' | 'ssh'>): Promise<void> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new EnvironmentError('netctl lab needs root (it creates network namespaces): run it with sudo')
  }
  const missing: Array<{tool: string; pkg: string}> = []
  for (const t of requiredTools(o)) if (!(await which(t.tool))) missing.push(t)
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((m) => m.pkg))]
    throw new EnvironmentError(
      `missing ${missing.map((m) => m.tool).join(', ')}: install with 'apt-get install ${pkgs.join(' ')}'`,
    )
  }
}
