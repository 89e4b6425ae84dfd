import type {Link} from '../../model/node-state.js'
import {parseIp} from '../ip.js'
import {answersArp} from '../neighbour.js'
import type {Place, SnapshotIndex} from './place.js'
import {vethPeer, wantPodBehind} from './veth.js'

/**
 * Who on a link would answer an ARP request for `target`, when the sender
 * has no usable neighbour entry yet: the kernel then resolves it, and the
 * answer is the MAC the packet goes to.
 */
export interface ArpAnswerer {
  mac?: string
  /** node and namespace of the answerer, and the device that answers */
  node: string
  netns: string
  dev: string
  how: 'local' | 'proxy_arp' | 'proxy-entry' | 'assumed'
  evidence: string[]
}

export type ArpOutcome = {found: ArpAnswerer} | {none: string} | {missing: string; node?: string}

const ownsAddress = (place: Place, dev: string, ip: string): boolean => {
  const t = parseIp(ip)?.text
  return place.fibState.addresses.some((a) => a.dev === dev && parseIp(a.local)?.text === t)
}

function ask(place: Place, dev: string, target: string, sender: string): ArpAnswerer | undefined {
  const a = answersArp(place.fibState, {target, sender, dev})
  if (!a.answers) return undefined
  const link = place.links.get(dev)
  const how = a.how ?? 'local'
  const line = `${dev} in ${place.netns} answers ARP for ${target}${link?.mac ? ` with ${link.mac}` : ''}: ${a.reason}`
  // a proxy answer rests on the route and the sysctl: show them; an own address needs no more
  const more = how === 'local' ? [] : a.evidence.filter((l) => !/^\d+:\s/.test(l) && !l.startsWith('no ip rule'))
  return {
    ...(link?.mac ? {mac: link.mac} : {}),
    node: place.node,
    netns: place.netns,
    dev,
    how,
    evidence: [line, ...more],
  }
}

/** The pods behind a bridge's ports whose own address is `target`; and the ports whose far end the snapshot lacks. */
function onBridge(
  index: SnapshotIndex,
  host: Place,
  bridge: string,
  target: string,
  sender: string,
  except?: string,
): {answer?: ArpAnswerer; unknown: string[]} {
  const unknown: string[] = []
  for (const port of host.state.links.filter((l) => l.master === bridge && l.name !== except)) {
    const peer = vethPeer(index, host, port.name)
    if (!peer) unknown.push(port.name)
    else if (ownsAddress(peer.place, peer.dev, target)) {
      const answer = ask(peer.place, peer.dev, target, sender)
      if (answer) return {answer, unknown}
    }
  }
  // no one answered: the pods behind the ports whose far end the snapshot lacks may
  for (const port of unknown) wantPodBehind(index, host, port)
  return {unknown}
}

function fromBridge(r: {answer?: ArpAnswerer; unknown: string[]}, host: Place, none: string): ArpOutcome {
  if (r.answer) return {found: r.answer}
  if (r.unknown.length > 0)
    return {
      missing: `${host.node}: the namespace behind the bridge port${r.unknown.length > 1 ? 's' : ''} ${r.unknown.join(', ')} (who would answer ARP there)`,
    }
  return {none}
}

export function whoAnswers(index: SnapshotIndex, place: Place, link: Link, target: string, sender: string): ArpOutcome {
  if (link.kind === 'bridge')
    return fromBridge(onBridge(index, place, link.name, target, sender), place, `no pod on ${link.name} has ${target}`)
  if (link.kind === 'veth') {
    const peer = vethPeer(index, place, link.name)
    if (peer) {
      const plink = peer.place.links.get(peer.dev)
      if (plink?.master) {
        // the peer is a bridge port: the bridge itself and every other port hear the request
        const own = ask(peer.place, plink.master, target, sender)
        if (own) return {found: own}
        return fromBridge(
          onBridge(index, peer.place, plink.master, target, sender, peer.dev),
          peer.place,
          `neither ${plink.master} on ${peer.place.node} nor a pod behind it has ${target}`,
        )
      }
      const a = ask(peer.place, peer.dev, target, sender)
      return a
        ? {found: a}
        : {
            none: `${peer.dev} in ${peer.place.netns} does not answer for ${target} (not its address, no proxy_arp, no proxy entry)`,
          }
    }
    wantPodBehind(index, place, link.name)
    if (place.pod)
      return {missing: `${place.node}: the node end of ${place.pod.namespace}/${place.pod.name}'s ${link.name}`}
  }
  if (link.kind === 'vxlan') {
    const flood = place.state.fdb.filter((e) => e.dev === link.name && e.mac === '00:00:00:00:00:00' && e.dst)
    for (const e of flood) {
      const owner = index.nodeOwning(e.dst!)
      const remote = owner ? index.host(owner.name) : undefined
      const dev = remote?.state.links.find(
        (l) => l.kind === 'vxlan' && l.vxlan?.vni === link.vxlan?.vni && ownsAddress(remote, l.name, target),
      )
      if (remote && dev)
        return {
          found: {
            ...(dev.mac ? {mac: dev.mac} : {}),
            node: remote.node,
            netns: remote.netns,
            dev: dev.name,
            how: 'local',
            evidence: [
              `flooded to ${e.dst} by 00:00:00:00:00:00 dev ${link.name} dst ${e.dst}; ${dev.name} on ${remote.node} has ${target}`,
            ],
          },
        }
    }
    return {none: `${link.name} has nolearning and no flood entry that reaches ${target}: an ARP request goes nowhere`}
  }
  // the uplink: the underlay segment, where the nodes are
  const owner = index.nodeOwning(target)
  if (!owner)
    return {
      found: {
        node: place.node,
        netns: place.netns,
        dev: link.name,
        how: 'assumed',
        evidence: [`${target} is not a cluster node: netctl assumes the underlay answers ARP for it`],
      },
    }
  const remote = index.host(owner.name)
  if (!remote) return {missing: `${owner.name}: node state not collected`, node: owner.name}
  const dev = remote.state.addresses.find((a) => parseIp(a.local)?.text === parseIp(target)?.text)?.dev
  const a = dev ? ask(remote, dev, target, sender) : undefined
  return a ? {found: a} : {none: `${owner.name} does not answer ARP for ${target}`}
}
