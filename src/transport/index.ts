import type {InventoryNode} from '../cluster/inventory-types.js'
import {NetnsTransport} from './netns.js'
import {type Transport, TransportError} from './types.js'

export type {ExecOptions, Transport, TransportResult} from './types.js'
export {TransportError} from './types.js'

/** Makes the transport that reaches one inventory node. */
export type TransportFactory = (node: InventoryNode) => Transport

/**
 * Transports by access kind. The ssh transport registers itself here when it
 * exists (`registerTransport('ssh', ...)`); until then a node reached over ssh
 * fails on its own, as unreachable, and the other nodes are still collected.
 */
const registry: Partial<Record<'netns' | 'ssh', TransportFactory>> = {
  netns: (node) => new NetnsTransport(node.access.netns!),
}

/** Plug in (or, with undefined, take out) the factory for one access kind. */
export function registerTransport(kind: 'netns' | 'ssh', factory: TransportFactory | undefined): void {
  if (factory) registry[kind] = factory
  else delete registry[kind]
}

export const createTransport: TransportFactory = (node) => {
  if (node.access.netns !== undefined) {
    const netns = registry.netns
    if (!netns) throw new TransportError(`node ${node.name}: netns transport not available`, 'config')
    return netns(node)
  }
  if (node.access.ssh !== undefined) {
    const ssh = registry.ssh
    if (!ssh) throw new TransportError(`node ${node.name}: ssh transport not available yet (only lab nodes reached through access.netns can be collected)`, 'config')
    return ssh(node)
  }
  throw new TransportError(`node ${node.name}: no access method (access.netns or access.ssh)`, 'config')
}
