/**
 * The faults of the kernel-oracle suite, each as the plain commands an operator
 * would type to break a flannel vxlan lab node and to mend it again. One table for
 * every suite that breaks a lab this way (the walk against ping, `--probe`, `diff`),
 * so that they break the same thing the same way.
 */
import {type LabUp, nsRun} from './lab.js'

type Node = LabUp['nodes'][0]

export interface LabFault {
  apply: () => Promise<void>
  undo: () => Promise<void>
}

const run = async (netns: string, ...argv: string[]): Promise<void> => {
  await nsRun(netns, ...argv)
}

/** A fault made of two plain commands in one namespace: the break and its mend. */
export const commandFault = (netns: string, apply: string[], undo: string[]): LabFault => ({
  apply: () => run(netns, ...apply),
  undo: () => run(netns, ...undo),
})

const neighbourLladdr = (from: Node, to: Node, mac: string) =>
  run(from.netns, 'ip', 'neigh', 'replace', vtepAddress(to), 'lladdr', mac, 'dev', 'flannel.1', 'nud', 'permanent')

/** Apply a fault, run the body, undo the fault (also when the body fails). */
export async function withLabFault<T>(fault: LabFault, body: () => Promise<T>): Promise<T> {
  await fault.apply()
  try {
    return await body()
  } finally {
    await fault.undo()
  }
}

/** The VTEP address flannel gives a node: the network address of its podCIDR. */
export const vtepAddress = (n: Node): string => n.podCIDR.split('/')[0]!

export const labFaults = {
  /** `from`'s FDB entry for `to`'s VTEP deleted: the vxlan device has nowhere to send the frame. */
  fdbDeleted: (from: Node, to: Node): LabFault => {
    const entry = [to.vtepMAC, 'dev', 'flannel.1', 'dst', to.ip, 'self']
    return commandFault(
      from.netns,
      ['bridge', 'fdb', 'del', ...entry],
      ['bridge', 'fdb', 'append', ...entry, 'permanent'],
    )
  },

  /** `from`'s route to `to`'s podCIDR deleted (flanneld's `via VTEP dev flannel.1 onlink` put back). */
  routeDeleted: (from: Node, to: Node): LabFault =>
    commandFault(
      from.netns,
      ['ip', 'route', 'del', to.podCIDR],
      ['ip', 'route', 'add', to.podCIDR, 'via', vtepAddress(to), 'dev', 'flannel.1', 'onlink'],
    ),

  /** `from`'s neighbour entry for `to`'s VTEP given another MAC, nothing else changed. */
  vtepNeighbourChanged: (from: Node, to: Node, wrong: string): LabFault => ({
    apply: () => neighbourLladdr(from, to, wrong),
    undo: () => neighbourLladdr(from, to, to.vtepMAC),
  }),

  /**
   * `from`'s neighbour entry for `to`'s VTEP given a wrong MAC, with an FDB entry for it so the
   * frame still leaves: `to`'s vxlan device drops a frame not addressed to it.
   */
  vtepNeighbourWrong: (from: Node, to: Node, wrong: string): LabFault => ({
    apply: async () => {
      await neighbourLladdr(from, to, wrong)
      await run(from.netns, 'bridge', 'fdb', 'append', wrong, 'dev', 'flannel.1', 'dst', to.ip, 'self', 'permanent')
    },
    undo: async () => {
      await neighbourLladdr(from, to, to.vtepMAC)
      await run(from.netns, 'bridge', 'fdb', 'del', wrong, 'dev', 'flannel.1', 'dst', to.ip, 'self')
    },
  }),

  /**
   * `iptables -I FORWARD -d IP/32 -j DROP` on a node: inserted first, since appended it would come
   * after flanneld's FLANNEL-FWD accept and never be reached.
   */
  forwardDrop: (node: Node, ip: string): LabFault => {
    const rule = ['FORWARD', '-d', `${ip}/32`, '-j', 'DROP']
    return commandFault(node.netns, ['iptables', '-I', ...rule], ['iptables', '-D', ...rule])
  },

  /** A sysctl set to `value` on a node, and back to `restore`. */
  sysctl: (node: Node, key: string, value: string, restore: string): LabFault =>
    commandFault(node.netns, ['sysctl', '-qw', `${key}=${value}`], ['sysctl', '-qw', `${key}=${restore}`]),

  /** `net.ipv4.ip_forward=0` on a node. */
  forwardingOff: (node: Node): LabFault => labFaults.sysctl(node, 'net.ipv4.ip_forward', '0', '1'),

  /** A link of a node set down, and up again. */
  linkDown: (node: Node, dev: string): LabFault =>
    commandFault(node.netns, ['ip', 'link', 'set', dev, 'down'], ['ip', 'link', 'set', dev, 'up']),

  /** A blackhole route for IP/32 on a node. */
  blackhole: (node: Node, ip: string): LabFault =>
    commandFault(
      node.netns,
      ['ip', 'route', 'add', 'blackhole', `${ip}/32`],
      ['ip', 'route', 'del', 'blackhole', `${ip}/32`],
    ),
}
