import {NetctlError} from '../errors.js'
import type {LabPlan} from './types.js'

// Filled in by the ssh work: sshd per node (key-only), key, known_hosts, ssh config with ProxyCommand.
export async function startLabSsh(_plan: LabPlan): Promise<void> {
  throw new NetctlError('lab --ssh is not implemented yet')
}
