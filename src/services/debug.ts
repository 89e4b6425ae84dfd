/** `netctl debug cleanup` behind its command: the debug pods an interrupted run left, deleted. */
import type {Verdict} from '../errors.js'
import type {CleanupResult} from '../transport/kube-debug.js'
import {debugCleanupVerdict} from './outcome.js'

/**
 * Connect as kubectl would and delete the leftover debug pods (in one
 * namespace, or all). The Kubernetes client is loaded only here, on use.
 */
export async function runDebugCleanup(req: {
  kubeconfig?: string | undefined
  context?: string | undefined
  namespace?: string | undefined
}): Promise<{result: CleanupResult; verdict: Verdict}> {
  const {KubeApi} = await import('../cluster/kube-api.js')
  const {deleteLeftoverDebugPods} = await import('../transport/kube-debug.js')
  const api = await KubeApi.connect({kubeconfig: req.kubeconfig, context: req.context})
  const result = await deleteLeftoverDebugPods(api, {namespace: req.namespace})
  return {result, verdict: debugCleanupVerdict(result)}
}
