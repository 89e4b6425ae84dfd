/**
 * Addressing findings: pod subnets, the files and bridges derived from them,
 * and the node addresses peers use.
 */
import type {CatalogueEntry} from './types.js'

export const ADDRESSING: CatalogueEntry[] = [
  {
    code: 'PODCIDR_MISSING',
    area: 'addressing',
    severity: 'error',
    title: 'node has no podCIDR',
    meaning:
      'The Node object has no spec.podCIDR, so flannel (with the Kubernetes subnet manager) has no subnet to serve and other nodes have nothing to route to. kube-controller-manager allocates them only with --allocate-node-cidrs and a --cluster-cidr, and stops when the cluster CIDR is used up.',
    symptoms: 'Pods on the node stay ContainerCreating; flanneld on it fails with a "pod cidr not assigned" error.',
    confirm: [
      "kubectl get node <node> -o jsonpath='{.spec.podCIDR}'",
      'kubectl -n kube-system get pods -l component=kube-controller-manager -o yaml',
    ],
    fix: [
      '# run kube-controller-manager with --allocate-node-cidrs=true --cluster-cidr=<network> and a --node-cidr-mask-size that leaves room for every node',
      '# or set it once by hand: kubectl patch node <node> -p with {"spec":{"podCIDR":"<podCIDR>"}}',
    ].join('\n'),
    related: ['PODCIDR_OUTSIDE_NETWORK'],
  },
  {
    code: 'PODCIDR_DUPLICATE',
    area: 'addressing',
    severity: 'error',
    title: 'two nodes hold the same podCIDR',
    meaning:
      'Two nodes were given the same pod subnet (set by hand, a restored etcd, an old flannel lease). Both hand out the same pod IPs, and every other node routes that subnet to only one of them.',
    symptoms:
      'Pods on one of the two nodes are unreachable from the rest of the cluster; duplicate pod IPs appear in `kubectl get pods -o wide`.',
    confirm: ['kubectl get nodes -o custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR', 'ip route show <podCIDR>'],
    fix: [
      '# spec.podCIDR cannot change in place: re-register one of the nodes so it gets a fresh subnet',
      'kubectl drain <node> --ignore-daemonsets --delete-emptydir-data',
      'kubectl delete node <node>',
      '# then restart kubelet on <node>; it registers again and gets a new podCIDR',
    ].join('\n'),
    related: ['PODCIDR_OVERLAP'],
  },
  {
    code: 'PODCIDR_OVERLAP',
    area: 'addressing',
    severity: 'error',
    title: 'pod subnet overlaps another subnet',
    meaning:
      "A node's podCIDR overlaps another node's (different prefix lengths), or the pod network overlaps the Service range or the nodes' own underlay subnet. The longest prefix wins, so some addresses are routed to the wrong place, including node-to-node traffic when the underlay is covered.",
    symptoms:
      'Some pod IPs (or node IPs) are unreachable from some nodes only; the failures follow address ranges, not nodes.',
    confirm: [
      'kubectl get nodes -o custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR',
      'ip route show',
      'ip -br addr',
    ],
    fix: [
      '# re-plan: the pod network <network> must not overlap the Service range or the node subnets',
      '# then re-register the affected node so it gets a non-overlapping podCIDR',
      'kubectl drain <node> --ignore-daemonsets --delete-emptydir-data',
    ].join('\n'),
    related: ['PODCIDR_DUPLICATE', 'BLACKHOLE_ROUTE'],
  },
  {
    code: 'PODCIDR_OUTSIDE_NETWORK',
    area: 'addressing',
    severity: 'error',
    title: "podCIDR outside the CNI's pod network",
    meaning:
      "The node's podCIDR is not inside the network the CNI serves (flannel net-conf.json Network, a Calico IP pool). kube-controller-manager's --cluster-cidr and the CNI disagree: flannel refuses the subnet, and masquerade rules treat pod traffic as leaving the cluster.",
    symptoms: 'flanneld fails on the node, or pod traffic to other nodes arrives source-NATed to the node IP.',
    confirm: ['kubectl -n kube-flannel get configmap kube-flannel-cfg -o yaml', 'calicoctl get ippools -o wide'],
    fix: '# make kube-controller-manager --cluster-cidr and the CNI network the same (<network>), then re-register the nodes outside it',
    related: ['PODCIDR_MISSING', 'SUBNET_ENV_MISMATCH'],
  },
  {
    code: 'SUBNET_ENV_MISMATCH',
    area: 'addressing',
    severity: 'error',
    title: '/run/flannel/subnet.env disagrees with the node',
    meaning:
      "flanneld writes FLANNEL_NETWORK, FLANNEL_SUBNET and FLANNEL_MTU to /run/flannel/subnet.env, and the flannel CNI plugin configures every new pod from it. When it no longer matches the node's podCIDR or the tunnel MTU, new pods get addresses or an MTU the rest of the cluster does not expect.",
    symptoms: 'Pods created after a change are unreachable or have a wrong MTU, while older pods work.',
    confirm: [
      'cat /run/flannel/subnet.env',
      "kubectl get node <node> -o jsonpath='{.spec.podCIDR}'",
      'ip link show flannel.1',
    ],
    fix: [
      '# let flanneld rewrite it, then recreate the pods created since',
      'rm /run/flannel/subnet.env',
      'kubectl -n kube-flannel delete pod -l app=flannel --field-selector spec.nodeName=<node>',
    ].join('\n'),
    related: ['BRIDGE_ADDR_MISMATCH', 'MTU_MISMATCH'],
  },
  {
    code: 'BRIDGE_ADDR_MISMATCH',
    area: 'addressing',
    severity: 'error',
    title: "cni0's address is not the podCIDR's gateway",
    meaning:
      "The bridge cni0 holds an address that is not the first address of the node's podCIDR, usually left over from an earlier podCIDR. The bridge plugin refuses to add pods to it, and pods that exist use a gateway that is not there.",
    symptoms:
      'New pods fail with "failed to set bridge addr: cni0 already has an IP address different from ..."; existing pods cannot leave the node.',
    confirm: ['ip -br addr show cni0', "kubectl get node <node> -o jsonpath='{.spec.podCIDR}'"],
    fix: [
      '# give cni0 <bridgeAddr>; deleting it also works: the bridge plugin recreates it with the next pod',
      'ip addr flush dev cni0',
      'ip addr add <bridgeAddr> dev cni0',
    ].join('\n'),
    dispositions: ['NEIGHBOR_UNRESOLVED'],
    related: ['SUBNET_ENV_MISMATCH'],
  },
  {
    code: 'NODE_IP_MISMATCH',
    area: 'addressing',
    severity: 'error',
    title: 'peers use an address that is not the node',
    meaning:
      "The address other nodes use to reach this one (Node InternalIP, flannel's flannel.alpha.coreos.com/public-ip annotation, Calico's BGP address) is not on the node, or the sources disagree. On multi-homed nodes the agent picked the wrong interface, so tunnels and BGP sessions aim at an address that does not lead here.",
    symptoms: 'Tunnel traffic or BGP to this node goes nowhere, while ssh to its InternalIP works.',
    confirm: ['kubectl get node <node> -o wide', 'kubectl get node <node> -o yaml', 'ip -br addr'],
    fix: [
      '# tell the agent which interface carries node traffic',
      '# flannel: flanneld --iface=<dev>   Calico: IP_AUTODETECTION_METHOD=interface=<dev> on calico-node',
      'kubectl -n kube-flannel edit daemonset kube-flannel-ds',
    ].join('\n'),
    related: ['FDB_STALE', 'BGP_SESSION_DOWN'],
  },
]
