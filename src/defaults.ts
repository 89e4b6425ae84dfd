/**
 * netctl's defaults in one place: every timeout, bound and image a run uses
 * unless a flag or option says otherwise, each with why it is what it is.
 * The lab's agent defaults (kube-proxy mode, host profile, Service CIDR) are
 * the lab's own: src/lab/agents/defaults.ts.
 */

// ---------------------------------------------------------------- collecting

/** Nodes probed at the same time (--parallel): enough to read a 50-node cluster in a few rounds, few enough for one machine's sockets and a shared API server. */
export const DEFAULT_PARALLEL = 16
/** How long one node may take (--timeout) before it counts as unreachable: a probe takes a second or two, a debug pod's image pull much longer. */
export const DEFAULT_TIMEOUT_MS = 30_000
/** Other per-node work at once (applying, clearing leftovers, preflight answers): the collect bound, for the same reasons. */
export const NODE_PARALLEL = 16

// ---------------------------------------------------------------- transports

/**
 * The debug pod's image: nicolaka/netshoot, the usual network-troubleshooting
 * image (iproute2 with JSON output, bridge, nsenter, iptables/nft, tcpdump),
 * pinned by tag so that every run gets the same tools. netctl enters the
 * host's mount namespace (nsenter -m) and so mostly runs the node's own
 * binaries; the image must still have nsenter and a POSIX sh. Clusters that
 * cannot pull from Docker Hub pass --debug-image with a mirror.
 */
export const DEFAULT_DEBUG_IMAGE = 'docker.io/nicolaka/netshoot:v0.13'
/** How long a debug pod may take to be Running: an image pull on a cold node is counted in minutes. */
export const DEBUG_POD_START_TIMEOUT_MS = 120_000
/** The debug pod ends itself after this even if netctl is killed outright (SIGKILL) and never deletes it. */
export const DEBUG_POD_ACTIVE_DEADLINE_SECONDS = 900
/** How long deleting a debug pod is waited for: its grace period is 0, so longer means the kubelet is stuck. */
export const DEBUG_POD_DELETE_WAIT_MS = 10_000
/** How long an interrupted run waits for the API server to take its debug pods' deletions: the user is waiting to get the prompt back. */
export const DEBUG_POD_SIGNAL_DELETE_MS = 5_000
/** One Kubernetes API request (a watch has its own deadline): an API server that takes longer is in trouble. */
export const KUBE_REQUEST_TIMEOUT_MS = 15_000
/** SSH connect and handshake per hop, as ssh's ConnectTimeout: a live host answers in well under a second. */
export const SSH_CONNECT_TIMEOUT_MS = 10_000
/** Channels open at once on one SSH connection, the rest wait in line: well under sshd's MaxSessions (10). */
export const SSH_MAX_CHANNELS = 4
/** SSH keepalive: a dead peer is noticed in seconds rather than at the TCP timeout. */
export const SSH_KEEPALIVE_MS = 15_000
/** How long closing one transport (a debug pod's deletion) is waited for at the end of a run before it is left to its own deadline. */
export const TRANSPORT_CLOSE_BOUND_MS = 20_000

// ---------------------------------------------------------------- backend set

/** One node's `ip -batch` / `bridge -batch`: hundreds of lines take well under a second; a minute means the node is stuck. */
export const BATCH_TIMEOUT_MS = 60_000
/** How long verification waits for a lab's or inventory's new state (daemons restarted, BGP sessions up): the lab's BIRD retries a session every 3 s. */
export const SETTLE_MS = 30_000
/** Kubernetes: how long the CNI may take to program the nodes after its DaemonSet rolled out: its agents re-sync on start. */
export const KUBE_SETTLE_MS = 60_000
/** Kubernetes: how long a DaemonSet may take to roll out (--rollout-timeout), as `kubectl rollout status` is often given: 5 minutes. */
export const ROLLOUT_TIMEOUT_MS = 300_000
/** Preflight's probe of one node (tools, kernel modules, peers' reachability): a few pings and lookups. */
export const PREFLIGHT_PROBE_TIMEOUT_MS = 20_000
/** One source pod pinging its targets in verification: a few pings each, one second apart at the most. */
export const POD_PING_TIMEOUT_MS = 60_000
/** trace --probe: packets sent per probe; a few, so that one lost to ARP does not decide, and few enough to stay within a second or two */
export const PROBE_PACKETS = 3
/** trace --probe: the ICMP echo payload pattern ("netctl" in hex), so that the probe is recognisable in a capture */
export const PROBE_PAYLOAD_PATTERN = '6e657463746c'
/** trace --probe: the flow's conntrack entries read per node; one flow has one entry per direction pair, a few more are other probes' */
export const PROBE_CONNTRACK_LIMIT = 4
/** trace --probe: a lost DF ping bigger than this is sent again at this size (the IP packet), to tell an MTU from a drop */
export const PROBE_SMALL_SIZE = 84

// ---------------------------------------------------------------- the lab

/** One lab build script in a namespace (`sh -e`): thousands of ip/nft lines; minutes mean the kernel is stuck. */
export const LAB_SCRIPT_TIMEOUT_MS = 120_000
/** How long lab up waits for a backend's dataplane to be whole (BIRD's sessions up, routes exported). */
export const LAB_READY_TIMEOUT_MS = 60_000
/** bird / birdc in a node: BIRD answers its control socket at once, or it is stuck. */
export const BIRD_CONTROL_TIMEOUT_MS = 30_000
/** How long a lab node's daemon (sshd, socat, the udp forwarder) has to start and answer: they start in milliseconds. */
export const DAEMON_READY_MS = 15_000
/** How long a stopped lab daemon has to exit before SIGKILL, or its device to go. */
export const DAEMON_STOP_MS = 10_000
/** A question to a node's BIRD (`birdc show ...`, `ip route show proto bird`), and how long `birdc down` may take to end it. */
export const BIRD_QUERY_TIMEOUT_MS = 10_000
/** A one-shot check in a lab namespace (`nc -z`, one ping, `ip link show`): a second's work, bounded so a stuck one cannot hold the run. */
export const QUICK_CHECK_TIMEOUT_MS = 5_000
/** lab bench: how long pods may take to reach each other before measuring (a backend's daemons may still be settling). */
export const BENCH_REACH_TIMEOUT_MS = 30_000
