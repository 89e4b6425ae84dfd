import type {LabBackendName} from '../types.js'
import {calicoBgp, calicoRr, calicoVxlan, calicoVxlanCrossSubnet} from './calico.js'
import {flannelHostGw, flannelVxlan} from './flannel.js'
import {flannelUdp} from './flannel-udp.js'
import {bridgePlumbing, caliPlumbing} from './plumbing.js'
import type {LabBackend, LabNodeDaemon, PodPlumbing} from './types.js'

const BACKENDS: Record<LabBackendName, LabBackend> = {
  'flannel-vxlan': flannelVxlan,
  'flannel-host-gw': flannelHostGw,
  'flannel-udp': flannelUdp,
  'calico-bgp': calicoBgp,
  'calico-rr': calicoRr,
  'calico-vxlan': calicoVxlan,
  'calico-vxlan-crosssubnet': calicoVxlanCrossSubnet,
}

export function labBackend(name: LabBackendName): LabBackend {
  return BACKENDS[name]
}

/** The lab backend module that runs `daemon` on its nodes (any of them: BIRD is the same daemon in every Calico mode). */
export function labDaemon(daemon: LabNodeDaemon['name']): LabNodeDaemon | undefined {
  return Object.values(BACKENDS).find((b) => b.daemon?.name === daemon)?.daemon
}

export function podPlumbing(backend: LabBackend): PodPlumbing {
  return backend.family === 'calico' ? caliPlumbing : bridgePlumbing
}

export type {LabBackend, LabNodeDaemon, PodPlumbing} from './types.js'
