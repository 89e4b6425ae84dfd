/**
 * `lab kube-proxy sync`: a lab's stand-in for restarting kube-proxy. Under the
 * lab's change lock, each node asked for (every node by default) gets its
 * Service rules rewritten from the lab's Services and EndpointSlices, in the
 * lab's proxy mode (src/lab/agents/kube-proxy-sync.ts).
 */
import {UsageError} from '../errors.js'
import {labAgents} from '../lab/agents/index.js'
import {type KubeProxySync, syncKubeProxy} from '../lab/agents/kube-proxy-sync.js'
import {mapLimit} from '../util/exec.js'
import {type LabPolicyChangeOptions, underChangeLock} from './lab-policy.js'

export interface LabKubeProxySyncResult {
  lab: string
  nodes: KubeProxySync[]
}

export async function syncLabKubeProxy(
  lab: string,
  nodes: readonly string[] = [],
  opts: LabPolicyChangeOptions = {},
): Promise<LabKubeProxySyncResult> {
  const command = `lab kube-proxy sync --lab ${lab}${nodes.map((n) => ` --node ${n}`).join('')}`
  return underChangeLock(lab, command, opts, async (record) => {
    const {proxyMode} = labAgents(record)
    if (proxyMode === 'none')
      throw new UsageError(
        `lab ${lab} runs no kube-proxy (it was made with --proxy-mode none): there are no Service rules to sync`,
        false,
      )
    const unknown = nodes.filter((n) => !record.nodes.some((x) => x.name === n))
    if (unknown.length > 0)
      throw new UsageError(
        `lab ${lab} has no node ${unknown.join(', ')} (its nodes: ${record.nodes.map((n) => n.name).join(', ')})`,
        false,
      )
    const chosen = nodes.length > 0 ? record.nodes.filter((n) => nodes.includes(n.name)) : record.nodes
    // each node's kube-proxy syncs on its own: side by side
    const synced = await mapLimit(chosen, 4, (node) => syncKubeProxy(record, node, proxyMode))
    return {lab, nodes: synced}
  })
}
