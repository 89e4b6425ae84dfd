/**
 * What a lab node carries besides its backend's dataplane: the rules of the
 * agents a real node runs (kube-proxy, flanneld, Felix) and of its host.
 */
export const PROXY_MODES = ['iptables', 'nftables', 'none'] as const
export type ProxyMode = (typeof PROXY_MODES)[number]

export const HOST_PROFILES = ['plain', 'docker', 'firewalld', 'ufw'] as const
export type HostProfile = (typeof HOST_PROFILES)[number]

/**
 * The one place the lab's agent defaults live: the most common real node,
 * kube-proxy in its default mode (iptables) and no host firewall of its own
 * (managed node images ship none; docker, firewalld and ufw are opt-in profiles).
 */
export const LAB_AGENT_DEFAULTS: {proxyMode: ProxyMode; hostProfile: HostProfile} = {
  proxyMode: 'iptables',
  hostProfile: 'plain',
}

/**
 * The Service CIDR (kube-apiserver --service-cluster-ip-range). Like the rest
 * of the lab's plan it stays out of 10.0.0.0/8 and 192.0.2.0/24 (the machine's
 * own networks): pods 172.20/16, Services 172.21/16, underlay 172.31/16.
 */
export const SERVICE_CIDR = '172.21.0.0/16'
/**
 * The lab's external addresses of Services: spec.externalIPs and a load balancer's ingress IPs (a
 * MetalLB-like pool), outside the pods', the Services' and the underlay's ranges.
 */
export const EXTERNAL_SERVICE_RANGE = '172.23.0.0/24'
/** the cluster DNS Service's ClusterIP, by convention the .10 of the Service CIDR */
export const CLUSTER_DNS_IP = '172.21.0.10'

/** kube-proxy's masquerade mark (--masquerade-bit 14). */
export const KUBE_MARK_MASQ = 0x4000
