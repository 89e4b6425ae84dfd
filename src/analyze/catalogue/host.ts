/**
 * Host findings: the node's own forwarding switches, firewall and links.
 */
import type {CatalogueEntry} from './types.js'

/**
 * LINK_DOWN's fix when the link is set up but has no carrier: `ip link set up` changes nothing
 * there, the far end is what is down (the veth's peer, the switch port, the cable).
 */
export const LINK_NO_CARRIER_FIX = [
  '# <dev> is set up but has no carrier: its far end is down, not <dev> itself',
  '# a veth: set its peer up (ip -d link show <dev> names it after the @); a physical port: the cable, the switch port',
  'ip -d link show <dev>',
  'ethtool <dev>',
].join('\n')

/**
 * FIREWALL_DROP's fix for a native nftables rule (the entry's is iptables'): nft names a chain by family,
 * table and chain, and deletes a rule by its handle (`nft -a` prints them).
 */
export function nftDropFix(handle: number | undefined): string {
  return [
    '# the rule: <rule>',
    'nft -a list chain <family> <nftTable> <chain>',
    `# if it should not match pod traffic, delete it by its handle: nft delete rule <family> <nftTable> <chain> handle ${handle ?? 'HANDLE (nft -a prints it)'}`,
  ].join('\n')
}

/**
 * FIREWALL_DROP's and FORWARD_POLICY_DROP's fix on a node whose firewall is ufw (its chains `ufw-*` in
 * the filter table): ufw writes its chains again from its own files on every reload, so the change is
 * made through ufw: `ufw allow` (INPUT), `ufw route allow` (FORWARD), `ufw allow out` (OUTPUT) for the
 * flow's protocol, addresses and port (`<proto>`, `<src>`, `<dst>`, `<dport>`); ufw's commands take no
 * ICMP type, so ICMP goes into its before.rules.
 */
export function ufwDropFix(o: {
  hook: string
  userRule: boolean
  /** the rule is a line of ufw's before.rules or after.rules */
  file?: string
  ports: boolean
  port: boolean
}): string {
  const port = o.port ? ' port <dport>' : ''
  const allow = !o.ports
    ? [
        `# ufw's commands take no ICMP type: add this line to /etc/ufw/before.rules, then ufw reload`,
        `# -A ufw-before-${o.hook.toLowerCase()} -p <proto> -s <src> -d <dst> -j ACCEPT`,
      ]
    : o.hook === 'FORWARD'
      ? [`ufw route allow proto <proto> from <src> to <dst>${port}`]
      : o.hook === 'OUTPUT'
        ? [`ufw allow out proto <proto> to <dst>${port}`]
        : [`ufw allow proto <proto> from <src> to any${port}`]
  return [
    "# ufw's <chain> drops it: <rule>",
    'ufw status verbose',
    ...(o.userRule
      ? ['# a rule of yours denies it: find its number, then delete it', 'ufw status numbered', 'ufw delete NUMBER']
      : []),
    '# let this flow through',
    ...allow,
  ].join('\n')
}

export const HOST: CatalogueEntry[] = [
  {
    code: 'IP_FORWARD_DISABLED',
    area: 'host',
    severity: 'error',
    title: 'IPv4 forwarding is off',
    meaning:
      'net.ipv4.ip_forward is 0, so the node does not route between interfaces: packets from its pods to the tunnel or uplink, and from other nodes to its pods, are dropped. Some host hardening or a reset sysctl.conf turns it off after the CNI agent set it.',
    symptoms: 'Pods on this node reach only other pods behind the same bridge; nothing crosses the node.',
    confirm: ['sysctl net.ipv4.ip_forward', 'cat /proc/sys/net/ipv4/conf/<dev>/forwarding'],
    fix: [
      'sysctl -w net.ipv4.ip_forward=1',
      '# keep it across reboots',
      'echo net.ipv4.ip_forward=1 > /etc/sysctl.d/99-kubernetes-forward.conf',
    ].join('\n'),
    dispositions: ['FORWARDING_DISABLED'],
  },
  {
    code: 'FORWARD_POLICY_DROP',
    area: 'host',
    severity: 'error',
    title: 'FORWARD chain drops pod traffic by policy',
    meaning:
      'The filter FORWARD chain has policy DROP (Docker sets it when it starts) and no rule accepts the pod network, so routed pod traffic falls through to the policy. Flannel and Calico add accept rules for their pool; these are missing or sit below a drop.',
    symptoms:
      'Pods on one node lose cross-node traffic after Docker or a firewall service (re)starts; same-node traffic still works.',
    confirm: ['iptables -S FORWARD', 'iptables -L FORWARD -n -v --line-numbers'],
    fix: [
      '# accept the pod network <network> in both directions',
      'iptables -A FORWARD -s <network> -j ACCEPT',
      'iptables -A FORWARD -d <network> -j ACCEPT',
    ].join('\n'),
    dispositions: ['DENIED'],
    related: ['FIREWALL_DROP'],
  },
  {
    code: 'FIREWALL_DROP',
    area: 'host',
    severity: 'error',
    title: 'a firewall rule drops the packet',
    meaning:
      "A DROP or REJECT rule on the node matches the traced packet before anything accepts it. The evidence names the table, chain and rule as iptables-save or nft prints them. kube-proxy's own REJECT or DROP for a Service without endpoints (or without one on the node, under a Local traffic policy) is not this: it is SERVICE_NO_ENDPOINTS, since kube-proxy writes that rule again if deleted. On a node whose firewall is ufw (chains ufw-*, and the INPUT/FORWARD policy it sets) the fix is a ufw command, since ufw writes its chains again on every reload.",
    symptoms:
      'One flow fails (a port, a source range) while others between the same pods work; REJECT answers with an ICMP error, DROP times out.',
    confirm: ['iptables-save -c', 'nft list ruleset'],
    fix: [
      '# the rule: <rule>',
      'iptables -t <table> -L <chain> -n -v --line-numbers',
      '# if it should not match pod traffic, delete it by its number: iptables -t <table> -D <chain> NUMBER',
    ].join('\n'),
    dispositions: ['DENIED'],
    related: ['FORWARD_POLICY_DROP', 'POLICY_DENY', 'IPTABLES_BACKEND_SPLIT', 'SERVICE_NO_ENDPOINTS'],
  },
  {
    code: 'RP_FILTER_ASYMMETRIC',
    area: 'host',
    severity: 'error',
    title: 'strict reverse-path filter on an asymmetric path',
    meaning:
      'Reverse-path filtering is strict (1) where packets arrive on an interface other than the one the route back to their source uses, so the kernel drops them as spoofed. The effective value per interface is max(conf.all, conf.<dev>): 0 off, 1 strict, 2 loose. `ip route get ... iif` answers "Invalid cross-device link" for a packet it would drop.',
    symptoms:
      'Traffic one way works, the other way (or the replies) silently disappears; counters show no firewall drop.',
    confirm: [
      'sysctl net.ipv4.conf.all.rp_filter',
      'cat /proc/sys/net/ipv4/conf/<dev>/rp_filter',
      'ip route get <dstIP> from <srcIP> iif <dev>',
    ],
    fix: [
      '# loose mode (2) checks only that the source is routable at all',
      'sysctl -w net/ipv4/conf/<dev>/rp_filter=2',
      '# conf.all wins if it is higher: lower it too if it is 1',
      'sysctl -w net.ipv4.conf.all.rp_filter=2',
    ].join('\n'),
    dispositions: ['RP_FILTER_DROP'],
    related: ['ASYMMETRIC_PATH'],
  },
  {
    code: 'BR_NETFILTER_OFF',
    area: 'host',
    severity: 'warning',
    title: 'bridged traffic bypasses iptables',
    meaning:
      'The br_netfilter module is not loaded or net.bridge.bridge-nf-call-iptables is 0, so frames between pods on the same bridge (cni0) never pass iptables. Service DNAT and NetworkPolicy miss them: a pod reaching a Service backed by a pod on the same node gets replies it does not recognise.',
    symptoms:
      "Services work from other nodes but not from pods on the backend's own node; NetworkPolicy does not apply between same-node pods.",
    confirm: ['lsmod', 'sysctl net.bridge.bridge-nf-call-iptables'],
    fix: [
      'modprobe br_netfilter',
      'sysctl -w net.bridge.bridge-nf-call-iptables=1',
      '# keep it across reboots',
      'echo br_netfilter > /etc/modules-load.d/br_netfilter.conf',
    ].join('\n'),
    related: ['POLICY_UNENFORCED'],
  },
  {
    code: 'IPTABLES_BACKEND_SPLIT',
    area: 'host',
    severity: 'warning',
    title: 'rules split between iptables-legacy and iptables-nft',
    meaning:
      'The node has rules in both the legacy (x_tables) and the nf_tables backend: components use different iptables binaries. Both rule sets run in the kernel, but each tool shows only its own, and an ACCEPT in one cannot undo a DROP in the other.',
    symptoms:
      '`iptables -L` shows nothing wrong, yet packets are dropped; rules added by kube-proxy or the CNI agent seem to be ignored.',
    confirm: ['iptables -V', 'iptables-legacy-save', 'iptables-nft-save'],
    fix: [
      '# pick one backend for the host and every component (kube-proxy, CNI agent, policy)',
      'update-alternatives --set iptables /usr/sbin/iptables-nft',
      '# then restart those components and remove the rules left in the other backend (or reboot)',
    ].join('\n'),
    dispositions: ['DENIED'],
    related: ['FIREWALL_DROP'],
  },
  {
    code: 'LINK_DOWN',
    area: 'host',
    severity: 'error',
    title: 'an interface on the path is down',
    meaning:
      'An interface the path uses (uplink, cni0, a pod veth) is administratively down or has no carrier. Routes through an admin-down interface disappear; with no carrier, packets queue and go nowhere.',
    symptoms: '`ip link` shows state DOWN or NO-CARRIER; everything through that interface stops.',
    confirm: ['ip link show <dev>'],
    fix: 'ip link set <dev> up',
    dispositions: ['NO_ROUTE'],
    related: ['TUNNEL_DEVICE_DOWN'],
  },
]
