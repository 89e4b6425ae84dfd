import {NetctlError} from '../../errors.js'
import type {LabBackend} from './types.js'

// Filled in by the flannel-udp work: flannel0 TUN (socat) + a userspace forwarder on UDP 8285.
export const flannelUdp: LabBackend = {
  name: 'flannel-udp',
  family: 'flannel',
  podMTU: (u) => u - 28,
  nodeState() {
    throw new NetctlError('flannel-udp lab backend is not implemented yet')
  },
  annotations: () => ({}),
}
