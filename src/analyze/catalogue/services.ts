/**
 * Services: kube-proxy's translation of ClusterIPs and NodePorts to
 * endpoints, the conntrack entries that remember it, and the bridge's hairpin.
 */
import type {CatalogueEntry} from './types.js'

export const SERVICES: CatalogueEntry[] = [
  {
    code: 'SERVICE_NO_ENDPOINTS',
    area: 'services',
    severity: 'warning',
    title: 'a Service has no ready endpoint (or none on the node, under a Local traffic policy)',
    meaning:
      'The Service\'s EndpointSlices list no ready endpoint: its selector matches no pod, or none of them passes its readiness probe. kube-proxy then rejects every connection to the ClusterIP and NodePort: an iptables REJECT rule in filter KUBE-SERVICES (KUBE-EXTERNAL-SERVICES for the NodePort), or the nftables `no-endpoint-services` / `no-endpoint-nodeports` verdict maps jumping to reject-chain. Under internalTrafficPolicy Local (the ClusterIP) or externalTrafficPolicy Local (the NodePort from outside the node) kube-proxy sends only to the endpoints on the node the traffic is at, and a node without one drops it: the same rules saying "has no local endpoints" with DROP, the map elements `: drop` (in older kube-proxy versions a KUBE-SVL-/KUBE-XLB- rule jumping to KUBE-MARK-DROP, the packet then dropped by its mark in KUBE-FIREWALL). A trace that meets one of these raises this finding, not FIREWALL_DROP: the rule is kube-proxy\'s and comes back at its next sync; the cause is the Service.',
    symptoms:
      'Clients get "connection refused" (ICMP port unreachable) at once from the ClusterIP, though nothing listens there; DNS lookups through it fail the same way. Under a Local policy, connections time out from the nodes (or through the NodePorts of the nodes) that have no endpoint, and work elsewhere.',
    confirm: [
      'kubectl -n <namespace> get endpointslices -l kubernetes.io/service-name=<service>',
      'kubectl -n <namespace> get pods --show-labels',
      'iptables-save -t filter | grep -F "has no endpoints"',
    ],
    fix: [
      "# make the Service select a ready pod: compare its selector with the pods' labels, and see why its pods are not ready",
      'kubectl -n <namespace> describe service <service>',
      'kubectl -n <namespace> get pods -o wide --show-labels',
    ].join('\n'),
    dispositions: ['DENIED'],
    related: ['SERVICE_RULES_STALE', 'FIREWALL_DROP'],
  },
  {
    code: 'SERVICE_RULES_STALE',
    area: 'services',
    severity: 'error',
    title: "a node's kube-proxy rules disagree with the EndpointSlices",
    meaning:
      "kube-proxy on this node has not programmed what the API holds: an endpoint the EndpointSlices list has no KUBE-SEP- chain (nftables: endpoint- chain) behind the Service's chain, a rule still sends to an address that is no endpoint any more, or the node rejects a Service that has endpoints (or the reverse). kube-proxy is down, stuck, or failing its syncs (iptables-restore errors, a lock held), so this node balances over an older set of endpoints than the rest of the cluster.",
    symptoms:
      'A Service works from most nodes but not from this one, or only some of the time ("2 times out of 3") from here: connections sent to a deleted pod time out, a new pod gets no traffic from this node.',
    confirm: [
      'iptables-save -t nat | grep -E "KUBE-(SVC|SEP)-"',
      'nft list table ip kube-proxy',
      'kubectl -n <namespace> get endpointslices -l kubernetes.io/service-name=<service> -o wide',
    ],
    fix: [
      '# read why kube-proxy on <node> fell behind (before its pod goes), then restart it: it rewrites every Service rule from the EndpointSlices',
      'kubectl -n kube-system logs --tail=100 $(kubectl -n kube-system get pod -l k8s-app=kube-proxy --field-selector spec.nodeName=<node> -o name)',
      'kubectl -n kube-system delete pod -l k8s-app=kube-proxy --field-selector spec.nodeName=<node>',
    ].join('\n'),
    labFix: [
      "# the lab's kube-proxy is netctl: rewrite <node>'s Service rules from the lab's Services and EndpointSlices, as kube-proxy's sync does",
      'netctl lab kube-proxy sync --lab <lab> --node <node>',
    ].join('\n'),
    related: ['KUBE_PROXY_MISSING', 'CONNTRACK_STALE', 'SERVICE_NO_ENDPOINTS'],
  },
  {
    code: 'CONNTRACK_STALE',
    area: 'services',
    severity: 'error',
    title: 'a conntrack entry sends a Service flow to a former endpoint',
    meaning:
      "A conntrack entry on this node translates a ClusterIP or NodePort flow to an address that is no endpoint of the Service any more. Conntrack applies the translation it chose for the flow's first packet to every later one: a UDP client that keeps its source port (a resolver querying the cluster DNS) refreshes the entry with each query and never reaches the new endpoints. kube-proxy deletes such UDP entries when an endpoint goes; one left behind means it missed the change.",
    symptoms:
      'DNS lookups from one pod (or one node) time out after a CoreDNS pod was replaced, while other pods resolve; the same for any UDP Service.',
    confirm: [
      'conntrack -L -p <l4proto> --orig-dst <dstIP>',
      'kubectl -n <namespace> get endpointslices -l kubernetes.io/service-name=<service> -o wide',
    ],
    fix: [
      '# delete the entry that still sends this flow to <endpointIP>: its next packet is translated afresh, to a current endpoint',
      'conntrack -D -p <l4proto> --orig-src <srcIP> --orig-dst <dstIP> --sport <sport> --dport <dport> --reply-src <endpointIP>',
    ].join('\n'),
    related: ['SERVICE_RULES_STALE'],
  },
  {
    code: 'CONNTRACK_TABLE_FULL',
    area: 'services',
    severity: 'warning',
    title: "the node's conntrack table is (nearly) full",
    meaning:
      'nf_conntrack_count has reached 90% of nf_conntrack_max (a warning) or the maximum itself (an error). Every new flow through netfilter needs a conntrack entry: at the maximum the kernel drops the first packet of each new connection ("nf_conntrack: table full, dropping packet"), Service traffic included, since kube-proxy\'s DNAT lives in conntrack.',
    symptoms:
      'New connections on this node fail or time out at random while established ones keep working; the kernel log says "nf_conntrack: table full, dropping packet".',
    confirm: ['sysctl net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max', 'conntrack -S'],
    fix: [
      '# find what holds the entries (conntrack -L | sort by source), then raise the maximum (kube-proxy --conntrack-max-per-core or sysctl) or shorten the timeouts',
      'conntrack -S',
      'sysctl -w net.netfilter.nf_conntrack_max=$(( $(sysctl -n net.netfilter.nf_conntrack_max) * 2 ))',
    ].join('\n'),
    // a lab node's maximum is the machine's, read-only inside its namespace: free entries instead
    labFix: [
      "# in a lab the maximum is the machine's and read-only inside <node>'s namespace: see what holds the entries, then free them",
      'ip netns exec <netns> conntrack -S',
      'ip netns exec <netns> conntrack -F',
    ].join('\n'),
    related: ['CONNTRACK_STALE'],
  },
  {
    code: 'HAIRPIN_OFF',
    area: 'services',
    severity: 'error',
    title: "a Service endpoint's bridge port has hairpin off",
    meaning:
      "The pod is an endpoint of a Service, and its port on the node's bridge (cni0) has hairpin mode off. When the pod connects to its own Service and kube-proxy picks the pod itself, br_netfilter (net.bridge.bridge-nf-call-iptables = 1) translates the packet at the bridge and bridges it back from the port it came in by; without hairpin the bridge never sends a frame back out its ingress port, and the packet is dropped. (With br_netfilter off the packet is routed out of the bridge device instead, which needs no hairpin — but then the replies of other pods on the bridge go untranslated: BR_NETFILTER_OFF.) The bridge CNI plugin sets hairpin on with `hairpinMode: true` (flannel's default config).",
    symptoms:
      'A pod cannot reach its own Service some of the time (exactly when kube-proxy picks the pod itself: always, for a single-endpoint Service); other pods reach it fine.',
    confirm: ['bridge -d link show dev <dev>', 'ip -d link show dev <dev>'],
    fix: [
      "# turn hairpin back on for the pod's port (the bridge plugin's hairpinMode: true does it for new pods)",
      'bridge link set dev <dev> hairpin on',
    ].join('\n'),
    related: ['SERVICE_RULES_STALE'],
  },
  {
    code: 'KUBE_PROXY_MISSING',
    area: 'services',
    severity: 'error',
    title: 'a node has no kube-proxy rules while Services exist',
    meaning:
      "The cluster has Services, but this node holds none of kube-proxy's rules: no KUBE-SERVICES chain in iptables' nat table and no `ip kube-proxy` nftables table (nor a replacement such as Cilium's or Calico's eBPF Service handling, which netctl does not read). Nothing on the node translates a ClusterIP or NodePort, so packets to them go out the default route untranslated.",
    symptoms:
      'Every Service (the cluster DNS included) is unreachable from pods on this node and through its NodePorts; pod IPs still work.',
    confirm: [
      'iptables-save -t nat | grep -c KUBE-',
      'nft list tables',
      'kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide',
    ],
    fix: [
      '# kube-proxy is not running on <node> (or cannot program it): see its pod and log, then restart it',
      'kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide --field-selector spec.nodeName=<node>',
      'kubectl -n kube-system delete pod -l k8s-app=kube-proxy --field-selector spec.nodeName=<node>',
    ].join('\n'),
    labFix: [
      "# the lab's kube-proxy is netctl: rewrite <node>'s Service rules from the lab's Services and EndpointSlices, as kube-proxy's sync does",
      'netctl lab kube-proxy sync --lab <lab> --node <node>',
    ].join('\n'),
    related: ['SERVICE_RULES_STALE'],
  },
]
