/**
 * Backend-switch findings: why `netctl backend plan/set` preflight refuses a
 * switch. They are about the change asked for, not about a fault in today's
 * dataplane, so no check or trace raises them. (HOSTGW_NOT_L2_ADJACENT,
 * NODE_UNREACHABLE and COLLECTION_PARTIAL stop a switch too; they live in
 * their own areas.)
 */
import type {CatalogueEntry} from './types.js'

export const BACKEND: CatalogueEntry[] = [
  {
    code: 'BACKEND_FAMILY_CHANGE',
    area: 'backend',
    severity: 'error',
    title: 'the switch would change the CNI plugin',
    meaning:
      "netctl switches the overlay within one CNI: Flannel's vxlan, host-gw and udp, or Calico's BGP, IPIP and VXLAN modes. Between Flannel and Calico the pod plumbing differs (pods on the cni0 bridge vs a cali* veth per pod behind proxy ARP) and so do the pod address blocks, so every pod would have to be recreated: that is a CNI migration, not a backend switch.",
    symptoms:
      '`netctl backend plan` and `set` refuse (exit 4) naming both CNI families; nothing on the nodes is changed.',
    confirm: ['netctl backend get', 'ls /etc/cni/net.d'],
    fix: '# choose a <family> backend; moving to <newFamily> is a CNI migration (drain and recreate the pods node by node)',
    related: ['CNI_CONFIG_CONFLICT'],
  },
  {
    code: 'KERNEL_MODULE_MISSING',
    area: 'backend',
    severity: 'error',
    title: "a node's kernel cannot make the backend's tunnel device",
    meaning:
      'The new backend creates a device of a link type (vxlan for flannel.1 and vxlan.calico, ipip for tunl0, tun for flannel0) that the kernel makes only with its module: built in, loaded, or loadable from /lib/modules. A node without it would fail half way through the switch, so the switch is refused; the plan can still be read.',
    symptoms:
      "`netctl backend set` refuses (exit 4) naming the nodes; on them `ip link add ... type <module>` fails with 'Unknown device type'.",
    confirm: ['ls -d /sys/module/<module>', 'modprobe -n -v <module>'],
    fix: '# load the module where the kernel has it, or choose another backend\nmodprobe <module>',
    related: ['TUNNEL_DEVICE_MISSING', 'BACKEND_UNSUPPORTED'],
  },
  {
    code: 'BACKEND_UNSUPPORTED',
    area: 'backend',
    severity: 'error',
    title: 'this cluster cannot run the backend',
    meaning:
      "netctl can plan the backend, but not bring it up on this cluster: in a lab, netctl builds each backend's nodes itself and has no module for this one (Calico IPIP is analysed from fixtures only). The plan shows what would change; applying it is refused.",
    symptoms:
      '`netctl backend set` refuses (exit 4) with the reason; `netctl backend plan` shows the changes and the refusal.',
    confirm: ['netctl backend plan <backend>'],
    fix: '# choose another backend',
    related: ['KERNEL_MODULE_MISSING'],
  },
  {
    code: 'DAEMON_UNMANAGED',
    area: 'backend',
    severity: 'error',
    title: 'the switch needs backend daemons netctl does not run here',
    meaning:
      "Switching to or from flannel udp or a Calico mode means starting, stopping or reconfiguring a daemon on every node (the udp forwarder, BIRD). netctl runs those daemons only in its own lab; on real nodes they belong to the CNI's DaemonSet, and netctl refuses rather than fight it.",
    symptoms:
      '`netctl backend set` on an inventory or Kubernetes cluster refuses (exit 4) any switch that involves BIRD or the udp forwarder; flannel-vxlan <-> flannel-host-gw goes ahead.',
    confirm: ['kubectl get daemonsets -A', 'pgrep -a bird'],
    fix: "# switch through the CNI's own configuration (flannel net-conf.json, Calico IPPool), or between kernel-only backends (flannel-vxlan, flannel-host-gw)",
    related: ['UDP_DAEMON_DOWN', 'BGP_SESSION_DOWN'],
  },
  {
    code: 'DAEMON_PROGRAM_MISSING',
    area: 'backend',
    severity: 'error',
    title: 'a program the backend daemon needs is missing on nodes',
    meaning:
      "In its lab netctl runs the new backend's daemons itself: BIRD (bird and birdc) for Calico's modes, socat holding flannel udp's TUN device. A node where the program is not on PATH could not start the daemon and would be left without routes to its peers, so the switch is refused.",
    symptoms: '`netctl backend set` refuses (exit 4) naming the program and the nodes that lack it.',
    confirm: ['command -v <program>'],
    fix: '# install <program> on every node',
    related: ['DAEMON_UNMANAGED', 'UDP_DAEMON_DOWN'],
  },
]
