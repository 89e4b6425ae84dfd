/**
 * The Kubernetes objects netctl reads, as the API server sends them (plain
 * JSON, not client classes): only the fields netctl looks at are typed, the
 * rest passes through untouched.
 */

export interface ObjectMeta {
  name: string
  namespace?: string
  uid?: string
  resourceVersion?: string
  creationTimestamp?: string
  deletionTimestamp?: string
  generateName?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  [key: string]: unknown
}

export interface KubeObject {
  apiVersion: string
  kind: string
  metadata: ObjectMeta
  [key: string]: unknown
}

export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion: string
  kind: string
  metadata: {resourceVersion?: string; continue?: string}
  items: T[]
}

/** What the API server answers with on an error (and on the exec error channel). */
export interface KubeStatus {
  kind?: 'Status'
  apiVersion?: string
  metadata?: object
  status?: 'Success' | 'Failure'
  message?: string
  reason?: string
  details?: {
    name?: string
    group?: string
    kind?: string
    uid?: string
    causes?: Array<{reason?: string; message?: string; field?: string}>
    retryAfterSeconds?: number
  }
  code?: number
}

export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'
  object: T
}

export interface NodeAddress {
  type: 'InternalIP' | 'ExternalIP' | 'Hostname' | 'InternalDNS' | 'ExternalDNS' | string
  address: string
}

export interface Taint {
  key: string
  value?: string
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' | string
}

export interface KubeNode extends KubeObject {
  spec?: {podCIDR?: string; podCIDRs?: string[]; unschedulable?: boolean; taints?: Taint[]}
  status?: {
    addresses?: NodeAddress[]
    conditions?: Array<{type: string; status: string; reason?: string; message?: string}>
    nodeInfo?: Record<string, string>
  }
}

export interface ContainerState {
  waiting?: {reason?: string; message?: string}
  running?: {startedAt?: string}
  terminated?: {exitCode?: number; reason?: string; message?: string}
}

export interface ContainerStatus {
  name: string
  image?: string
  ready?: boolean
  restartCount?: number
  started?: boolean
  state?: ContainerState
}

export interface PodCondition {
  type: string
  status: 'True' | 'False' | 'Unknown' | string
  reason?: string
  message?: string
}

export interface Container {
  name: string
  image?: string
  command?: string[]
  args?: string[]
  securityContext?: {privileged?: boolean; [key: string]: unknown}
  [key: string]: unknown
}

export interface Toleration {
  key?: string
  operator?: 'Exists' | 'Equal'
  value?: string
  effect?: string
  tolerationSeconds?: number
}

export interface KubePod extends KubeObject {
  spec?: {
    nodeName?: string
    hostNetwork?: boolean
    hostPID?: boolean
    containers?: Container[]
    tolerations?: Toleration[]
    activeDeadlineSeconds?: number
    restartPolicy?: string
    [key: string]: unknown
  }
  status?: {
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown'
    reason?: string
    message?: string
    hostIP?: string
    podIP?: string
    podIPs?: Array<{ip: string}>
    conditions?: PodCondition[]
    containerStatuses?: ContainerStatus[]
    [key: string]: unknown
  }
}

export interface KubeConfigMap extends KubeObject {
  data?: Record<string, string>
}

export interface KubeDaemonSet extends KubeObject {
  spec?: {
    selector?: {matchLabels?: Record<string, string>}
    template?: {
      metadata?: {labels?: Record<string, string>}
      spec?: {containers?: Container[]; initContainers?: Container[]; [key: string]: unknown}
    }
    [key: string]: unknown
  }
  status?: {desiredNumberScheduled?: number; numberReady?: number; [key: string]: unknown}
}

export interface KubeNetworkPolicy extends KubeObject {
  spec?: {
    podSelector?: {matchLabels?: Record<string, string>; matchExpressions?: unknown[]}
    policyTypes?: string[]
    ingress?: unknown[]
    egress?: unknown[]
  }
}

/** crd.projectcalico.org/v1 IPPool (Calico's own datastore objects in KDD mode). */
export interface CalicoIPPool extends KubeObject {
  spec?: {
    cidr?: string
    ipipMode?: 'Always' | 'CrossSubnet' | 'Never' | string
    vxlanMode?: 'Always' | 'CrossSubnet' | 'Never' | string
    natOutgoing?: boolean
    disabled?: boolean
    blockSize?: number
    nodeSelector?: string
  }
}

export interface CalicoBGPConfiguration extends KubeObject {
  spec?: {nodeToNodeMeshEnabled?: boolean; asNumber?: number; logSeverityScreen?: string; [key: string]: unknown}
}

export interface CalicoBGPPeer extends KubeObject {
  spec?: {
    peerIP?: string
    asNumber?: number
    node?: string
    nodeSelector?: string
    peerSelector?: string
    [key: string]: unknown
  }
}

/** A Service (v1): the fields a trace to it reads. */
export interface KubeService extends KubeObject {
  spec?: {
    type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName'
    clusterIP?: string
    sessionAffinity?: 'ClientIP' | 'None'
    internalTrafficPolicy?: 'Cluster' | 'Local'
    externalTrafficPolicy?: 'Cluster' | 'Local'
    sessionAffinityConfig?: {clientIP?: {timeoutSeconds?: number}}
    trafficDistribution?: string
    externalIPs?: string[]
    loadBalancerSourceRanges?: string[]
    healthCheckNodePort?: number
    ports?: Array<{
      name?: string
      protocol?: 'TCP' | 'UDP' | 'SCTP'
      port: number
      targetPort?: number | string
      nodePort?: number
    }>
  }
  status?: {loadBalancer?: {ingress?: Array<{ip?: string; hostname?: string; ipMode?: 'VIP' | 'Proxy' | string}>}}
}

/** An EndpointSlice (discovery.k8s.io/v1): a Service's endpoints and their readiness. */
export interface KubeEndpointSlice extends KubeObject {
  addressType?: 'IPv4' | 'IPv6' | 'FQDN'
  endpoints?: Array<{
    addresses: string[]
    conditions?: {ready?: boolean; serving?: boolean; terminating?: boolean}
    nodeName?: string
    zone?: string
    hints?: {forZones?: Array<{name?: string}>; forNodes?: Array<{name?: string}>}
    targetRef?: {kind?: string; namespace?: string; name?: string}
  }>
  ports?: Array<{name?: string; protocol?: string; port?: number}>
}
