import type {LabKubeProxySyncResult} from '../services/lab-kube-proxy.js'
import {table} from './color.js'

/** `lab kube-proxy sync`: one row per node synced. */
export function labKubeProxySyncText(r: LabKubeProxySyncResult): string {
  return [
    table(
      ['NODE', 'MODE', 'SERVICE-PORTS', 'ENDPOINTS'],
      r.nodes.map((n) => [n.node, n.mode, String(n.servicePorts), String(n.endpoints)]),
    ),
    `lab ${r.lab}: kube-proxy's rules on ${r.nodes.length === 1 ? r.nodes[0]!.node : `${r.nodes.length} nodes`} rewritten from the lab's Services and EndpointSlices`,
  ].join('\n')
}
