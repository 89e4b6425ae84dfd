import {nodeDefaultRoute} from './calico.js'
import {flannelVxlan} from './flannel.js'
import type {LabBackend} from './types.js'

/**
 * Canal (projectcalico/calico manifests/canal.yaml): calico-node with
 * CALICO_NETWORKING_BACKEND none (Felix, no BIRD) beside flanneld with the
 * vxlan backend. Pods are the calico CNI plugin's (host-local IPAM on the
 * node's podCIDR): cali veths with /32 routes and proxy ARP, no cni0 (podPlumbing
 * gives them by family). Between nodes, exactly flannel vxlan's kernel state and
 * annotations; the node gets the default route Calico's proxy ARP needs.
 */
export const canal: LabBackend = {
  name: 'canal',
  family: 'canal',
  podMTU: flannelVxlan.podMTU,
  nodeState(s, plan, node) {
    nodeDefaultRoute(s, plan, node)
    flannelVxlan.nodeState(s, plan, node)
  },
  annotations: flannelVxlan.annotations,
}
