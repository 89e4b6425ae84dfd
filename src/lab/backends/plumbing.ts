import {addToIPv4, prefixLength} from '../../analyze/ip.js'
import {loMarkArgs} from '../netns-setup.js'
import type {NsScript} from '../script.js'
import type {LabPod} from '../types.js'
import type {PodPlumbing} from './types.js'

/** The MAC Calico gives every host-side cali veth. */
export const CALICO_HOST_VETH_MAC = 'ee:ee:ee:ee:ee:ee'
/** The gateway every Calico pod routes through; answered by proxy ARP on the cali veth. */
export const CALICO_POD_GATEWAY = '169.254.1.1'

/** The pod's veth pair, as every CNI here makes it: the host end named for the pod, eth0 inside the pod, both at the pod MTU. */
function addPodVeth(s: NsScript, pod: LabPod, mtu: number): void {
  s.ip('link', 'add', pod.hostVeth, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', mtu, 'netns', pod.netns)
}

/** Flannel's CNI (bridge plugin): pods hang off `cni0`, which holds the node's .1. */
export const bridgePlumbing: PodPlumbing = {
  nodeState(s, _plan, node, mtu) {
    s.ip('link', 'add', 'cni0', 'type', 'bridge')
    s.ip('link', 'set', 'cni0', 'mtu', mtu)
    s.ip('addr', 'add', `${addToIPv4(node.podCIDR, 1)}/${prefixLength(node.podCIDR)}`, 'dev', 'cni0')
    s.ip('link', 'set', 'cni0', 'up')
  },
  pod(s, _plan, node, pod, mtu) {
    addPodVeth(s, pod, mtu)
    s.ip('link', 'set', pod.hostVeth, 'master', 'cni0', 'up')
    s.cmd('ip', '-n', pod.netns, ...loMarkArgs(pod.netns))
    s.cmd('ip', '-n', pod.netns, 'addr', 'add', `${pod.ip}/${prefixLength(node.podCIDR)}`, 'dev', 'eth0')
    s.cmd('ip', '-n', pod.netns, 'link', 'set', 'eth0', 'up')
    s.cmd('ip', '-n', pod.netns, 'route', 'add', 'default', 'via', addToIPv4(node.podCIDR, 1), 'dev', 'eth0')
  },
}

/** Calico's CNI: no bridge; a cali veth per pod, a /32 route to it, proxy ARP for 169.254.1.1. */
export const caliPlumbing: PodPlumbing = {
  nodeState() {
    /* Calico needs no node-wide device for pods */
  },
  pod(s, _plan, _node, pod, mtu) {
    addPodVeth(s, pod, mtu)
    s.ip('link', 'set', pod.hostVeth, 'address', CALICO_HOST_VETH_MAC)
    s.ip('link', 'set', pod.hostVeth, 'up')
    s.sysctl(`net.ipv4.conf.${pod.hostVeth}.proxy_arp`, 1)
    s.sysctl(`net.ipv4.neigh.${pod.hostVeth}.proxy_delay`, 0)
    s.sysctl(`net.ipv4.conf.${pod.hostVeth}.rp_filter`, 1)
    s.ip('route', 'add', `${pod.ip}/32`, 'dev', pod.hostVeth, 'scope', 'link')
    s.cmd('ip', '-n', pod.netns, ...loMarkArgs(pod.netns))
    s.cmd('ip', '-n', pod.netns, 'addr', 'add', `${pod.ip}/32`, 'dev', 'eth0')
    s.cmd('ip', '-n', pod.netns, 'link', 'set', 'eth0', 'up')
    s.cmd('ip', '-n', pod.netns, 'route', 'add', CALICO_POD_GATEWAY, 'dev', 'eth0', 'scope', 'link')
    s.cmd('ip', '-n', pod.netns, 'route', 'add', 'default', 'via', CALICO_POD_GATEWAY, 'dev', 'eth0')
  },
}
