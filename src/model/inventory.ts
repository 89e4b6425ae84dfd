/**
 * The inventory: a cluster described by a file instead of the Kubernetes API.
 * `netctl lab up` writes exactly this; a user can write one by hand for real
 * nodes reached over SSH. Field names follow Kubernetes where one exists.
 */
export const INVENTORY_API_VERSION = 'netctl.dev/v1'

/** What an inventory entry (or a flag) sets for SSH explicitly; it beats the ssh config file, like `ssh -o`. */
export interface SshOverrides {
  user?: string
  port?: number
  identityFile?: string
  proxyJump?: string
  proxyCommand?: string
  /** known_hosts to check the node's host key against (default: the ssh config's, ~/.ssh/known_hosts) */
  knownHostsFile?: string
}

export interface InventoryNodeAccess {
  /** a lab node: the network namespace to enter with `ip netns exec` */
  netns?: string
  /** a real node: an ssh destination (a host or an alias from ~/.ssh/config) */
  ssh?: {host: string} & SshOverrides
}

/** Where the node keeps the files netctl reads; real nodes use the defaults. */
export interface InventoryNodePaths {
  /** default /run/flannel/subnet.env */
  flannelSubnetEnv?: string
  /** default /etc/cni/net.d */
  cniConfDir?: string
  /** default /opt/cni/bin */
  cniBinDir?: string
  /** default /var/run/calico/bird.ctl */
  birdSocket?: string
}

/** The node label of its zone (v1.LabelTopologyZone): kube-proxy reads it to follow an EndpointSlice's zone hints. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone'

export interface InventoryNode {
  name: string
  internalIP: string
  /** the node's public address, when it has one apart from internalIP */
  externalIP?: string
  /** the node's (IPv4) pod range; from Kubernetes '' when the Node has none (Calico IPAM without a confirmed block) */
  podCIDR: string
  /** every pod range, as spec.podCIDRs (dual-stack: the IPv6 one too); podCIDR is one of them */
  podCIDRs?: string[]
  access: InventoryNodeAccess
  /** node annotations as a cluster holds them (flannel backend-data, Calico IPv4Address, ...) */
  annotations?: Record<string, string>
  labels?: Record<string, string>
  paths?: InventoryNodePaths
}

export interface InventoryPod {
  name: string
  namespace: string
  node: string
  ip: string
  /** how to enter the pod's network namespace: a named netns, or a PID on the node */
  netns?: string
  pid?: number
  /** the pod's labels (read from the API; optional in a file) */
  labels?: Record<string, string>
  /** the pod shares its node's network namespace and address (NetworkPolicies match it only by ipBlock) */
  hostNetwork?: boolean
  /** the containers' ports; a NetworkPolicy names a port by its name */
  ports?: InventoryContainerPort[]
}

/** A container port, as spec.containers[].ports holds it. */
export interface InventoryContainerPort {
  name?: string
  containerPort: number
  protocol?: 'TCP' | 'UDP' | 'SCTP'
}

/** A namespace and its labels (namespaceSelectors match them). */
export interface InventoryNamespace {
  name: string
  labels?: Record<string, string>
}

/** A NetworkPolicy as `kubectl get networkpolicy -o yaml` shows it (spec verbatim). */
export interface InventoryNetworkPolicy {
  apiVersion?: string
  kind?: 'NetworkPolicy'
  metadata: {name: string; namespace?: string}
  spec: Record<string, unknown>
}

export interface Inventory {
  apiVersion: string
  kind: 'Inventory'
  cluster: {
    name: string
    /** the overlay backend, e.g. flannel-vxlan or calico-bgp */
    backend: string
    clusterCIDR: string
    /** the CNI running the pod network (flannel, calico, canal, ...): whether NetworkPolicies are enforced */
    cni?: string
    /** where this inventory came from: lab (written by netctl lab up), file, or kubernetes (read from the API server) */
    source: 'lab' | 'file' | 'kubernetes'
    /** the Service CIDR (kube-apiserver --service-cluster-ip-range) */
    serviceCIDR?: string
  }
  nodes: InventoryNode[]
  pods: InventoryPod[]
  /** Services with their EndpointSlice endpoints */
  services?: InventoryService[]
  /** namespaces with their labels (the name label is implied) */
  namespaces?: InventoryNamespace[]
  /** NetworkPolicies (a lab's, or written by hand); metadata.namespace defaults to "default" */
  networkPolicies?: InventoryNetworkPolicy[]
}

/** A Service port, as Kubernetes' ServicePort (targetPort a number). */
export interface InventoryServicePort {
  name?: string
  protocol: 'TCP' | 'UDP' | 'SCTP'
  port: number
  targetPort?: number
  nodePort?: number
}

/** An endpoint of the Service's EndpointSlice(s), as discovery/v1 Endpoint. */
export interface InventoryEndpoint {
  addresses: string[]
  conditions?: {ready?: boolean; serving?: boolean; terminating?: boolean}
  nodeName?: string
  /** the zone of the endpoint's node (the EndpointSlice controller copies its topology.kubernetes.io/zone label) */
  zone?: string
  /**
   * topology hints (trafficDistribution, or the topology-mode annotation): kube-proxy on a node sends only to the
   * endpoints hinted for its zone (forZones) or for itself (forNodes), when every ready endpoint has such a hint
   */
  hints?: {forZones?: Array<{name: string}>; forNodes?: Array<{name: string}>}
  targetRef?: {kind: string; namespace?: string; name: string}
}

/** A Service and the endpoints backing it, kept close to the Kubernetes objects. */
export interface InventoryService {
  name: string
  namespace: string
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer'
  clusterIP: string
  /** spec.externalIPs: addresses outside the cluster whose traffic to the Service's ports kube-proxy captures */
  externalIPs?: string[]
  /**
   * status.loadBalancer.ingress[].ip of a LoadBalancer, those kube-proxy captures as its own (ipMode VIP,
   * the default; a Proxy ingress is the load balancer's address, not captured)
   */
  loadBalancerIPs?: string[]
  /**
   * spec.loadBalancerSourceRanges: the client ranges a LoadBalancer's IPs accept; kube-proxy drops the rest (its
   * KUBE-FW- chain and KUBE-PROXY-FIREWALL, nft's firewall-ips), pods' and nodes' own connections included
   */
  loadBalancerSourceRanges?: string[]
  /** spec.healthCheckNodePort: a LoadBalancer with externalTrafficPolicy Local answers its load balancer's checks there */
  healthCheckNodePort?: number
  /** spec.externalTrafficPolicy: Local sends NodePort traffic from outside a node only to its own endpoints; absent: Cluster */
  externalTrafficPolicy?: 'Cluster' | 'Local'
  /** spec.internalTrafficPolicy: Local sends a node's ClusterIP traffic only to its own endpoints; absent: Cluster */
  internalTrafficPolicy?: 'Cluster' | 'Local'
  /** spec.sessionAffinity ClientIP with its sessionAffinityConfig.clientIP.timeoutSeconds; absent: None */
  sessionAffinity?: {clientIP: {timeoutSeconds: number}}
  /** spec.trafficDistribution (PreferClose, PreferSameZone, PreferSameNode): what the EndpointSlices' hints say */
  trafficDistribution?: string
  ports: InventoryServicePort[]
  endpoints?: InventoryEndpoint[]
}
