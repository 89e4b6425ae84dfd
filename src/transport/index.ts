import type {InventoryNode} from '../model/inventory.js'
import {NetnsTransport} from './netns.js'
import {sshTransport} from './ssh.js'
import {type Transport, TransportError} from './types.js'

export type {ExecOptions, Transport, TransportResult} from './types.js'
export {TransportError} from './types.js'

/** How the run reaches nodes beyond what the inventory says of each. */
export interface TransportSettings {
  /** like ssh -F: the one ssh config read for every node reached over SSH */
  sshConfig?: string
}

/** Makes the transport that reaches one inventory node. */
export type TransportFactory = (node: InventoryNode, settings?: TransportSettings) => Transport

/** Which way in, for a node the inventory gives more than one (a lab with sshd on its nodes). */
export type TransportChoice = 'auto' | 'netns' | 'ssh'

type Kind = 'netns' | 'ssh'

/** Transports by access kind; each can be swapped (tests) or taken out. */
const registry: Partial<Record<Kind, TransportFactory>> = {
  netns: (node) => new NetnsTransport(node.access.netns!),
  ssh: (node, settings = {}) => {
    const {host, user, port, identityFile, proxyJump, proxyCommand, knownHostsFile} = node.access.ssh!
    return sshTransport({
      host,
      node: node.name,
      ...defined({user, port, identityFile, proxyJump, proxyCommand, knownHostsFile, configFile: settings.sshConfig}),
    })
  },
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** Plug in (or, with undefined, take out) the factory for one access kind; returns the one it replaced. */
export function registerTransport(kind: Kind, factory: TransportFactory | undefined): TransportFactory | undefined {
  const previous = registry[kind]
  if (factory) registry[kind] = factory
  else delete registry[kind]
  return previous
}

function make(kind: Kind, node: InventoryNode, settings: TransportSettings): Transport {
  const factory = registry[kind]
  if (!factory) throw new TransportError(`node ${node.name}: ${kind} transport not available yet`, 'config')
  return factory(node, settings)
}

/** The transport for a node: `auto` takes its netns when it has one (a lab node), else ssh. */
export function createTransport(
  node: InventoryNode,
  choice: TransportChoice = 'auto',
  settings: TransportSettings = {},
): Transport {
  if (choice !== 'auto') {
    if (node.access[choice] === undefined)
      throw new TransportError(`node ${node.name}: the inventory gives no access.${choice} for it`, 'config')
    return make(choice, node, settings)
  }
  if (node.access.netns !== undefined) return make('netns', node, settings)
  if (node.access.ssh !== undefined) return make('ssh', node, settings)
  throw new TransportError(`node ${node.name}: no access method (access.netns or access.ssh)`, 'config')
}
