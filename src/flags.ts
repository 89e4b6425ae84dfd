import {Flags} from '@oclif/core'

/** --name for lab commands: one lab per name; every namespace of it is called NAME.* */
export const labNameFlag = Flags.string({
  description: 'Name of the lab; every namespace it makes is called NAME.<something>.',
  default: 'netctl',
  char: 'n',
})

/**
 * How to reach a Kubernetes cluster, with kubectl's names and precedence:
 * --kubeconfig, else $KUBECONFIG (several files merged), else ~/.kube/config,
 * else the pod's service account when netctl runs in a pod.
 */
export const kubeFlags = {
  kubeconfig: Flags.string({description: 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the in-cluster service account).', helpGroup: 'KUBERNETES'}),
  context: Flags.string({description: 'The kubeconfig context to use (default: its current-context).', helpGroup: 'KUBERNETES'}),
  namespace: Flags.string({char: 'n', description: "Namespace (default: the context's namespace, else default).", helpGroup: 'KUBERNETES'}),
}

/** --via debug-pod: the debug pod's image and namespace. */
export const debugPodFlags = {
  'debug-image': Flags.string({description: 'Image of the debug pod (needs nsenter and sh; default docker.io/nicolaka/netshoot:v0.13).', helpGroup: 'DEBUG POD'}),
  'debug-namespace': Flags.string({description: "Namespace the debug pods go in (default: the context's namespace).", helpGroup: 'DEBUG POD'}),
}
