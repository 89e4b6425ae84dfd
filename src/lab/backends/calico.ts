import {NetctlError} from '../../errors.js'
import type {LabBackend} from './types.js'

// Filled in by the Calico work: BIRD per node (mesh / route reflectors), vxlan.calico.
function notYet(name: 'calico-bgp' | 'calico-rr' | 'calico-vxlan'): LabBackend {
  return {
    name,
    family: 'calico',
    podMTU: (u) => u,
    nodeState() {
      throw new NetctlError(`${name} lab backend is not implemented yet`)
    },
    annotations: () => ({}),
  }
}

export const calicoBgp = notYet('calico-bgp')
export const calicoRr = notYet('calico-rr')
export const calicoVxlan = notYet('calico-vxlan')
