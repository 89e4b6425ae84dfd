import type {LabPlan, LabPod} from '../types.js'
import {CLUSTER_DNS_IP} from './defaults.js'

export type ServiceProtocol = 'TCP' | 'UDP'

/** One port of a Service, as in Kubernetes' ServicePort. */
export interface LabServicePort {
  name: string
  protocol: ServiceProtocol
  port: number
  targetPort: number
  nodePort?: number
}

/** One endpoint of an EndpointSlice, as in Kubernetes' discovery/v1 Endpoint. */
export interface LabEndpoint {
  addresses: string[]
  conditions: {ready: boolean}
  nodeName: string
  /** the node's zone, as the EndpointSlice controller copies it (absent in labs made before zones) */
  zone?: string
  /** trafficDistribution PreferClose: each ready endpoint hinted for its own zone (the controller's trafficdist) */
  hints?: {forZones: Array<{name: string}>}
  targetRef: {kind: 'Pod'; namespace: string; name: string}
}

/** A Service and its (single) EndpointSlice, kept close to the Kubernetes objects. */
export interface LabService {
  name: string
  namespace: string
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer'
  clusterIP: string
  /** spec.externalIPs */
  externalIPs?: string[]
  /** a LoadBalancer's status.loadBalancer.ingress[].ip, as a MetalLB-like controller assigns it */
  loadBalancerIPs?: string[]
  /** spec.loadBalancerSourceRanges: the clients the load-balancer IPs accept */
  loadBalancerSourceRanges?: string[]
  /** spec.healthCheckNodePort: a LoadBalancer with externalTrafficPolicy Local has one */
  healthCheckNodePort?: number
  ports: LabServicePort[]
  /** the EndpointSlice's endpoints; its ports are the Service ports' targetPorts */
  endpoints: LabEndpoint[]
  /** spec.sessionAffinity ClientIP with sessionAffinityConfig.clientIP.timeoutSeconds; absent: None */
  sessionAffinity?: {clientIP: {timeoutSeconds: number}}
  /**
   * spec.internalTrafficPolicy Local: a node sends ClusterIP traffic only to its own endpoints;
   * absent: Cluster.
   */
  internalTrafficPolicy?: 'Local'
  /** spec.externalTrafficPolicy Local: NodePort traffic from outside a node goes only to its own endpoints; absent: Cluster */
  externalTrafficPolicy?: 'Local'
  /** spec.trafficDistribution PreferClose: the EndpointSlice's endpoints carry zone hints; absent: none */
  trafficDistribution?: 'PreferClose'
}

function endpointOf(pod: LabPod, zone: string | undefined): LabEndpoint {
  return {
    addresses: [pod.ip],
    conditions: {ready: true},
    nodeName: pod.node,
    ...(zone ? {zone} : {}),
    targetRef: {kind: 'Pod', namespace: pod.namespace, name: pod.name},
  }
}

/**
 * The hints the EndpointSlice controller writes for trafficDistribution PreferClose (kubernetes
 * staging/src/k8s.io/endpointslice/trafficdist/trafficdist.go, preferCloseHeuristic): every ready
 * endpoint with a zone is hinted for that zone.
 */
function hintedForItsZone(e: LabEndpoint): LabEndpoint {
  return e.conditions.ready && e.zone ? {...e, hints: {forZones: [{name: e.zone}]}} : e
}

/**
 * The lab's Services: the cluster DNS (kube-system/kube-dns, UDP and TCP 53,
 * backed by the first pod of node1 and of node2, as CoreDNS runs two replicas
 * spread over nodes), a NodePort Service with an external IP backed by the first pod of every node,
 * a Service with ClientIP session affinity (the default 10800 s) backed by the same pods, one with
 * internalTrafficPolicy Local backed by the first pods of node1 and node2 (a third node has no
 * endpoint of its own, so its kube-proxy drops the Service), a LoadBalancer (its NodePort and a
 * load-balancer IP) with externalTrafficPolicy Local backed by the same two (a node without one drops what comes from outside, and keeps the
 * client's address where it has one), one with trafficDistribution PreferClose backed by the same two (in
 * zone-a and zone-b: each node's kube-proxy keeps to the endpoint of its own zone, node3 of zone-a to
 * node1's), and a Service without endpoints. The lab has no separate CoreDNS pods: the
 * endpoints are existing lab pods, so that pod counts stay what --pods-per-node says.
 */
export function planServices(plan: Pick<LabPlan, 'nodes' | 'pods'>): LabService[] {
  const zones = new Map(plan.nodes.map((n) => [n.name, n.zone]))
  const firstPods = plan.nodes
    .map((n) => plan.pods.find((p) => p.node === n.name))
    .filter((p): p is LabPod => p !== undefined)
  const endpointFor = (pod: LabPod): LabEndpoint => endpointOf(pod, zones.get(pod.node))
  return [
    {
      name: 'kube-dns',
      namespace: 'kube-system',
      type: 'ClusterIP',
      clusterIP: CLUSTER_DNS_IP,
      ports: [
        {name: 'dns', protocol: 'UDP', port: 53, targetPort: 53},
        {name: 'dns-tcp', protocol: 'TCP', port: 53, targetPort: 53},
      ],
      endpoints: firstPods.slice(0, 2).map(endpointFor),
    },
    {
      name: 'web',
      namespace: 'default',
      type: 'NodePort',
      clusterIP: '172.21.0.80',
      externalIPs: ['172.23.0.80'],
      ports: [{name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080}],
      endpoints: firstPods.map(endpointFor),
    },
    {
      name: 'sticky',
      namespace: 'default',
      type: 'ClusterIP',
      clusterIP: '172.21.0.81',
      ports: [{name: 'http', protocol: 'TCP', port: 80, targetPort: 8080}],
      endpoints: firstPods.map(endpointFor),
      sessionAffinity: {clientIP: {timeoutSeconds: 10800}},
    },
    {
      name: 'node-local',
      namespace: 'default',
      type: 'ClusterIP',
      clusterIP: '172.21.0.82',
      ports: [{name: 'http', protocol: 'TCP', port: 80, targetPort: 8080}],
      endpoints: firstPods.slice(0, 2).map(endpointFor),
      internalTrafficPolicy: 'Local',
    },
    {
      name: 'web-local',
      namespace: 'default',
      type: 'LoadBalancer',
      clusterIP: '172.21.0.83',
      loadBalancerIPs: ['172.23.0.83'],
      // the nodes' network and an outside one: the pods' own connections to the load-balancer IP are dropped
      loadBalancerSourceRanges: ['172.31.0.0/16', '198.51.100.0/24'],
      healthCheckNodePort: 30083,
      ports: [{name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30082}],
      endpoints: firstPods.slice(0, 2).map(endpointFor),
      externalTrafficPolicy: 'Local',
    },
    {
      name: 'zonal',
      namespace: 'default',
      type: 'ClusterIP',
      clusterIP: '172.21.0.84',
      ports: [{name: 'http', protocol: 'TCP', port: 80, targetPort: 8080}],
      endpoints: firstPods.slice(0, 2).map(endpointFor).map(hintedForItsZone),
      trafficDistribution: 'PreferClose',
    },
    {
      name: 'no-endpoints',
      namespace: 'default',
      type: 'ClusterIP',
      clusterIP: '172.21.0.99',
      ports: [{name: 'http', protocol: 'TCP', port: 80, targetPort: 8080}],
      endpoints: [],
    },
  ]
}

/** kube-proxy's ServicePortName.String(): `ns/name:port` (`ns/name` for an unnamed port). */
export function servicePortName(svc: LabService, port: LabServicePort): string {
  return `${svc.namespace}/${svc.name}${port.name ? `:${port.name}` : ''}`
}

/** Ready endpoint addresses of a Service, in EndpointSlice order. */
export function readyAddresses(svc: LabService): string[] {
  return svc.endpoints.filter((e) => e.conditions.ready).flatMap((e) => e.addresses)
}
