/**
 * CNI configuration and NetworkPolicy findings.
 */
import type {CatalogueEntry} from './types.js'

export const CNI_POLICY: CatalogueEntry[] = [
  {
    code: 'CNI_CONFIG_CONFLICT',
    area: 'cni-policy',
    severity: 'error',
    title: 'more than one CNI config on the node',
    meaning:
      '/etc/cni/net.d holds configs for more than one network (a leftover from an earlier CNI, or two installed at once). The container runtime uses the first file in lexical order, so this node may wire its pods with another CNI than the rest of the cluster.',
    symptoms: 'Pods on this node get addresses from another range or another bridge; they cannot reach pods elsewhere.',
    confirm: ['ls -l /etc/cni/net.d', 'cat <file>'],
    fix: [
      '# keep only the config of the CNI the cluster runs; remove the other one',
      'rm <file>',
      '# then recreate the pods on <node> that were wired by it',
    ].join('\n'),
    related: ['CNI_PLUGIN_MISSING'],
  },
  {
    code: 'CNI_PLUGIN_MISSING',
    area: 'cni-policy',
    severity: 'error',
    title: 'a CNI plugin binary is missing',
    meaning:
      'The CNI config names a plugin (bridge, host-local, portmap, flannel, calico, calico-ipam) that is not in the plugin directory, usually /opt/cni/bin. The runtime cannot set up a pod network, so no new pod on the node starts.',
    symptoms: 'Pods stay ContainerCreating with "failed to find plugin ... in path [/opt/cni/bin]".',
    confirm: ['ls -l /opt/cni/bin', 'cat <file>'],
    fix: [
      '# install the missing <plugin>: the reference plugins come from a containernetworking/plugins release; flannel and calico copy theirs from their install containers',
      'ls -l /opt/cni/bin/<plugin>',
    ].join('\n'),
    related: ['CNI_CONFIG_CONFLICT'],
  },
  {
    code: 'POLICY_DENY',
    area: 'cni-policy',
    severity: 'error',
    title: 'a NetworkPolicy denies the flow',
    meaning:
      'NetworkPolicies select the destination pod for ingress (or the source for egress), and no rule of any of them allows this peer and port. Once any policy selects a pod for a direction, everything not allowed is denied; policies only add allowances. netctl names every selecting policy and the rule that came closest, with what did not match (the port, a pod or namespace label, the CIDR). From `netctl check`: a default deny whose pods no policy opens to any other pod. It may be intended.',
    symptoms:
      'The connection times out (Calico drops, it does not reject); pods not selected by the policy connect fine.',
    confirm: ['kubectl -n <namespace> get networkpolicy', 'kubectl -n <namespace> describe networkpolicy <policy>'],
    fix: [
      '# if the flow should pass: add a rule to <policy> allowing <srcIP> (by podSelector or namespaceSelector) on the port',
      'kubectl -n <namespace> edit networkpolicy <policy>',
    ].join('\n'),
    dispositions: ['DENIED'],
    related: ['FIREWALL_DROP'],
  },
  {
    code: 'POLICY_UNENFORCED',
    area: 'cni-policy',
    severity: 'warning',
    title: 'NetworkPolicies exist but nothing enforces them',
    meaning:
      'The cluster has NetworkPolicy objects that select pods, but its CNI has no policy engine (plain flannel has none; Canal and Calico do). The API accepts the policies and they silently do nothing: every flow they should deny passes.',
    symptoms:
      'Traffic a policy should block gets through; pods a default-deny policy should isolate are reachable from anywhere.',
    confirm: ['kubectl -n <namespace> describe networkpolicy <policy>', 'kubectl get daemonsets -A -o wide'],
    fix: [
      '# <namespace>/<policy> has no effect until a policy engine runs with the overlay:',
      '# Canal (Calico policy over flannel vxlan, same pod network) or Calico itself',
      '# meanwhile, see what the policy was meant to allow and deny',
      'kubectl -n <namespace> describe networkpolicy <policy>',
    ].join('\n'),
    related: ['BR_NETFILTER_OFF', 'POLICY_DENY'],
  },
  {
    code: 'POLICY_NOT_PROGRAMMED',
    area: 'cni-policy',
    severity: 'error',
    title: 'a NetworkPolicy is in the API but not in the dataplane',
    meaning:
      "A NetworkPolicy selects pods on the node, but the node's Felix has not programmed it: no cali-pi-/cali-po- chain for it, or the pod's cali-tw-/cali-fw- chain does not jump to it. Felix is down, lagging, or cannot reach the datastore, so the node enforces an older set of policies than the API holds.",
    symptoms:
      'Traffic the new policy should deny still passes (or traffic a new allow rule should let through is still dropped) on this node only.',
    confirm: [
      'iptables-save -t filter | grep -E "cali-(pi|po|tw|fw)-"',
      'kubectl -n <namespace> get networkpolicy <policy> -o yaml',
      'kubectl -n kube-system logs -l k8s-app=calico-node --tail=50',
    ],
    fix: [
      "# Felix on <node> has not caught up with the API: look at calico-node's health and logs, then restart it",
      'kubectl -n kube-system delete pod -l k8s-app=calico-node --field-selector spec.nodeName=<node>',
    ].join('\n'),
    related: ['POLICY_STALE_RULES', 'POLICY_DENY'],
  },
  {
    code: 'POLICY_STALE_RULES',
    area: 'cni-policy',
    severity: 'warning',
    title: 'the dataplane still holds rules of a deleted NetworkPolicy',
    meaning:
      "The node's filter table has a cali-pi-/cali-po- policy chain (or a jump to one) for a NetworkPolicy the API no longer has. Felix removes a policy's chains when the policy goes; left behind, they keep enforcing what was deleted.",
    symptoms: 'Traffic stays denied (or allowed) after its policy was deleted or changed, on this node only.',
    confirm: ['iptables-save -t filter | grep -E "cali-(pi|po)-"', 'kubectl get networkpolicy -A'],
    fix: [
      '# Felix on <node> rewrites its chains from the API when it restarts',
      'kubectl -n kube-system delete pod -l k8s-app=calico-node --field-selector spec.nodeName=<node>',
    ].join('\n'),
    related: ['POLICY_NOT_PROGRAMMED', 'POLICY_DENY'],
  },
]
