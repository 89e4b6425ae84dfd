import {randomBytes} from 'node:crypto'

import type {InventoryNodePaths} from '../model/inventory.js'
import {shq} from '../util/shell.js'

/**
 * The node probe: one POSIX sh script, sent once per node, that only reads.
 *
 * Its output is a sequence of sections, each between two marker lines that
 * carry a per-run nonce (so no file content can fake one):
 *
 *   M PROBE 1                 the probe started (format version)
 *   M B name                  a section begins; its command's stdout follows
 *   M E name code             ... and ends, with the command's exit code
 *   M W name / ... / M Z      the command's stderr, when it printed any
 *   M A name why              the section's tool or file is absent on this node
 *   M F name                  a file or device inside a section (cni-conf, offloads)
 *   M DONE                    the probe reached its end
 *
 * Sections nest: `pod.N` (entering pod N's netns) holds `pod.N.links`, ...
 * A pod known only by namespace and name (the Kubernetes API gives no netns or
 * PID) is first looked up in the node's container runtime: `pod.N.runtime`
 * holds the ready sandbox crictl found and how it was entered (a netns path,
 * else the sandbox's PID).
 * Values from the cluster reach the script only as data: paths as single-quoted
 * assignments, the pod list as an octal-escaped here-document read line by line.
 */
export const PROBE_FORMAT = 3

/** Sections a later probe format added: output of an older probe (a recording) lacks them without being cut short. */
export const SECTIONS_SINCE: Record<string, number> = {ipset: 2, 'conntrack-counters': 2, conntrack: 2, 'xt-recent': 3}

/** Conntrack entries of Service flows (translated destinations) the probe reads at most, unless told otherwise. */
export const DEFAULT_CONNTRACK_LIMIT = 2000

/** Where real nodes keep the files the probe reads; an inventory overrides them per node. */
export const DEFAULT_PATHS: Required<InventoryNodePaths> = {
  flannelSubnetEnv: '/run/flannel/subnet.env',
  cniConfDir: '/etc/cni/net.d',
  cniBinDir: '/opt/cni/bin',
  birdSocket: '/var/run/calico/bird.ctl',
}

/**
 * How to enter one pod's network namespace from its node: a named netns, a
 * PID, or else (namespace and name) through the container runtime.
 */
export interface ProbePod {
  netns?: string
  pid?: number
  namespace?: string
  name?: string
}

/** A value as a whole-string match for crictl's filters, which are Go regular expressions (RE2). */
export function criPattern(value: string): string {
  return `^${value.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&')}$`
}

export interface ProbeOptions {
  paths?: InventoryNodePaths
  pods?: ProbePod[]
  /** seconds a single slow tool (birdcl) may take before `timeout` stops it */
  commandTimeoutSec?: number
  /** at most this many conntrack entries of Service flows (DNATed) are read (a busy node holds hundreds of thousands) */
  conntrackLimit?: number
  /** fixed only by tests; a random one otherwise */
  nonce?: string
}

export interface Probe {
  script: string
  /** the marker prefix every control line starts with */
  marker: string
  /** sections the script always emits (a missing one means the output was cut short) */
  sections: string[]
  paths: Required<InventoryNodePaths>
}

/** Sections of the node itself, in the order the probe emits them. */
export const NODE_SECTIONS = [
  'kernel',
  'links',
  'addresses',
  'routes4',
  'routes6',
  'rules4',
  'rules6',
  'neighbours',
  'fdb',
  'sysctls',
] as const
export const LATE_SECTIONS = [
  'iptables',
  'nftables',
  'ipset',
  'xt-recent',
  'conntrack-counters',
  'conntrack',
  'bird-protocols',
  'bird-routes',
  'flannel-subnet-env',
  'cni-conf',
  'cni-bin',
  'offloads',
  'processes',
] as const
/** Per pod: `pod.N` enters the namespace, then these (`pod.N.runtime` comes first for a pod found through crictl). */
export const POD_SECTIONS = ['links', 'addresses', 'routes4', 'routes6', 'neighbours'] as const

/** Encode a value for the pod here-document: every byte outside [A-Za-z0-9._-] becomes \0ooo (printf %b undoes it). */
export function octalEscape(value: string): string {
  let out = ''
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte)
    out += /[A-Za-z0-9._-]/.test(ch) ? ch : `\\0${byte.toString(8).padStart(3, '0')}`
  }
  return out === '' ? '\\0' : out
}

/** Shell functions both the node script and the per-pod script use. */
function prelude(): string {
  return `have() { command -v "$1" >/dev/null 2>&1; }
# sect NAME CMD...: CMD's stdout is the section body, its stderr the section's message.
sect() {
  _n=$1; shift
  printf '%s B %s\\n' "$M" "$_n"
  _e=$("$@" 2>&1 1>&3 3>&-)
  _r=$?
  printf '\\n%s E %s %s\\n' "$M" "$_n" "$_r"
  if [ -n "$_e" ]; then printf '%s W %s\\n%s\\n%s Z\\n' "$M" "$_n" "$_e" "$M"; fi
  return 0
}
absent() { printf '%s A %s %s\\n' "$M" "$1" "$2"; }
# tool SECTION TOOL CMD...: the section, or absent when TOOL is not installed
tool() {
  _s=$1; _t=$2; shift 2
  if have "$_t"; then sect "$_s" "$@"; else absent "$_s" "$_t not installed"; fi
}
# v6 SECTION CMD...: an IPv6 section, absent when the kernel has IPv6 disabled
v6() {
  _6=$1; shift
  if [ -e /proc/net/if_inet6 ]; then tool "$_6" ip ip "$@"; else absent "$_6" 'IPv6 is disabled on this node'; fi
}
`
}

/**
 * `cri_find NS-PATTERN NAME-PATTERN`: the pod's ready sandbox in the node's
 * container runtime, through crictl (containerd, CRI-O). It runs in the
 * probe's own shell and leaves its answer in variables: _sb the sandbox ID,
 * _np the network namespace path from the sandbox's OCI runtime spec (info.runtimeSpec.linux.namespaces,
 * `{"type": "network", "path": ...}` in either key order: crictl
 * before 1.26 printed the runtime's own order, later ones sort keys), else
 * _pp its PID (info.pid); _msg what crictl said besides (warnings, or why it
 * failed). Returns 1 when there is no way in. Needs sed and tr, not jq.
 */
export const CRI_FIND = `cri_find() {
  _sb=; _np=; _pp=; _msg=; _n=0
  _o=$(tmo crictl pods --namespace "$1" --name "$2" --state ready -q </dev/null 2>&1); _c=$?
  while IFS= read -r _l; do
    case $_l in
      '') ;;
      *[!0-9a-f]*) _msg="$_msg\${_msg:+ | }$_l" ;;
      *) _n=$((_n + 1)); [ -n "$_sb" ] || _sb=$_l ;;
    esac
  done <<NETCTL_CRI_IDS
$_o
NETCTL_CRI_IDS
  if [ "$_c" -ne 0 ]; then _msg="crictl pods failed (exit $_c)\${_msg:+: $_msg}"; return 1; fi
  if [ -z "$_sb" ]; then _msg="the container runtime has no ready sandbox for this pod\${_msg:+ ($_msg)}"; return 1; fi
  if [ "$_n" -gt 1 ]; then _msg="$_n ready sandboxes match; took $_sb\${_msg:+ | $_msg}"; fi
  _o=$(tmo crictl inspectp "$_sb" </dev/null 2>&1); _c=$?
  if [ "$_c" -ne 0 ]; then _msg="crictl inspectp $_sb failed (exit $_c): $(printf '%s' "$_o" | tr '\\n' ' ' | cut -c1-300)"; return 1; fi
  _o=$(printf '%s\\n' "$_o" | tr '\\n\\t' '  ')
  _x=$(printf '%s\\n' "$_o" | sed -n 's/.*\\({[^{}]*"type" *: *"network"[^{}]*}\\).*/\\1/p')
  _np=$(printf '%s\\n' "$_x" | sed -n 's/.*"path" *: *"\\([^"\\\\]*\\)".*/\\1/p')
  _pp=$(printf '%s\\n' "$_o" | sed -n 's/.*"pid" *: *\\([0-9][0-9]*\\).*/\\1/p')
  case $_np in /*) ;; *) _np= ;; esac
  [ "$_pp" = 0 ] && _pp=
  if [ -z "$_np" ] && [ -z "$_pp" ]; then _msg="crictl inspectp $_sb shows neither a network namespace path nor a PID\${_msg:+ | $_msg}"; return 1; fi
  return 0
}
`

/** The script run inside each pod's namespace: $1 is the marker, $2 the pod's index. */
function podScript(): string {
  return `M=$1; I=$2
exec 3>&1
${prelude()}
v6x() { if [ -e /proc/net/if_inet6 ]; then sect "$@"; else absent "$1" 'IPv6 is disabled'; fi; }
sect "pod.$I.links" ip -j -d link show
sect "pod.$I.addresses" ip -j addr show
sect "pod.$I.routes4" ip -j -4 route show table all
v6x "pod.$I.routes6" ip -j -6 route show table all
sect "pod.$I.neighbours" ip -j neigh show nud all
`
}

/** How the probe will enter a pod. */
export function podEntry(p: ProbePod): 'netns' | 'pid' | 'cri' | 'none' {
  if (p.netns !== undefined) return 'netns'
  if (p.pid !== undefined) return 'pid'
  if (p.namespace && p.name) return 'cri'
  return 'none'
}

/** The pod list as here-document lines: `INDEX netns ESCAPED`, `INDEX pid N` or `INDEX cri NS-PATTERN NAME-PATTERN`. */
function podLines(pods: ProbePod[]): string[] {
  return pods.map((p, i) => {
    switch (podEntry(p)) {
      case 'netns':
        return `${i} netns ${octalEscape(p.netns!)}`
      case 'pid':
        return `${i} pid ${Number.isInteger(p.pid) && p.pid! > 0 ? p.pid : 'invalid'}`
      case 'cri':
        return `${i} cri ${octalEscape(criPattern(p.namespace!))} ${octalEscape(criPattern(p.name!))}`
      default:
        return `${i} none -`
    }
  })
}

export function buildProbe(opts: ProbeOptions = {}): Probe {
  const nonce = opts.nonce ?? randomBytes(8).toString('hex')
  if (!/^[A-Za-z0-9]+$/.test(nonce)) throw new Error('probe nonce must be alphanumeric')
  const marker = `@@NETCTL-${nonce}`
  const paths: Required<InventoryNodePaths> = {...DEFAULT_PATHS, ...definedOnly(opts.paths ?? {})}
  const pods = opts.pods ?? []
  const timeout = Math.max(1, Math.round(opts.commandTimeoutSec ?? 10))
  const podEnd = `NETCTL_PODS_${nonce}`
  const ctLimit = Math.max(0, Math.round(opts.conntrackLimit ?? DEFAULT_CONNTRACK_LIMIT))

  const script = `# netctl node probe, format ${PROBE_FORMAT}. Read-only: it lists state and changes nothing.
set +e
LC_ALL=C; export LC_ALL
PATH=$PATH:/usr/sbin:/sbin:/usr/local/sbin:/usr/local/bin:/usr/bin:/bin; export PATH
M=${shq(marker)}
T=${timeout}
CT_LIMIT=${ctLimit}
P_SUBNET_ENV=${shq(paths.flannelSubnetEnv)}
P_CNI_CONF=${shq(paths.cniConfDir)}
P_CNI_BIN=${shq(paths.cniBinDir)}
P_BIRD=${shq(paths.birdSocket)}
POD=${shq(podScript())}
NL='
'
exec 3>&1
${prelude()}
tmo() { if have timeout; then timeout "$T" "$@"; else "$@"; fi; }
bad() { printf '%s\\n' "$1" >&2; return 2; }
# put NAME CODE BODY MESSAGE: a section from what the probe already holds
put() {
  printf '%s B %s\\n%s\\n%s E %s %s\\n' "$M" "$1" "$3" "$M" "$1" "$2"
  if [ -n "$4" ]; then printf '%s W %s\\n%s\\n%s Z\\n' "$M" "$1" "$4" "$M"; fi
  return 0
}
${CRI_FIND}
sysctls() {
  # one grep prints FILE:VALUE for every file (procfs answers byte-wise reads badly)
  grep -s -H '' /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding \\
    /proc/sys/net/ipv4/conf/*/forwarding /proc/sys/net/ipv4/conf/*/rp_filter \\
    /proc/sys/net/ipv4/conf/*/proxy_arp /proc/sys/net/ipv4/conf/*/accept_local \\
    /proc/sys/net/ipv4/conf/*/route_localnet /proc/sys/net/ipv4/conf/*/src_valid_mark \\
    /proc/sys/net/ipv4/conf/*/ignore_routes_with_linkdown /proc/sys/net/ipv4/conf/*/send_redirects \\
    /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/bridge/bridge-nf-call-ip6tables
  return 0
}

# Every pod of this node: enter its netns once and list its links, addresses, routes, neighbours.
pods() {
  while read -r _i _k _v _w; do
    _v=$(printf '%bx' "$_v"); _v=\${_v%x}
    case $_k in
      netns)
        case $_v in
          ''|.|..|*/*) sect "pod.$_i" bad "invalid netns name" ;;
          *) sect "pod.$_i" ip netns exec "$_v" sh -c "$POD" netctl-pod "$M" "$_i" </dev/null ;;
        esac ;;
      pid)
        case $_v in
          ''|*[!0-9]*) sect "pod.$_i" bad "invalid PID" ;;
          *) if have nsenter; then sect "pod.$_i" nsenter -t "$_v" -n sh -c "$POD" netctl-pod "$M" "$_i" </dev/null
             else absent "pod.$_i" 'nsenter not installed'; fi ;;
        esac ;;
      cri)
        _w=$(printf '%bx' "$_w"); _w=\${_w%x}
        if ! have crictl; then
          absent "pod.$_i.runtime" 'crictl not installed: the pod is looked up in the container runtime with crictl'
          absent "pod.$_i" 'crictl not installed: cannot find the network namespace of a pod known only by name'
        elif cri_find "$_v" "$_w"; then
          if [ -n "$_np" ]; then put "pod.$_i.runtime" 0 "sandbox $_sb\${NL}netns $_np" "$_msg"; else put "pod.$_i.runtime" 0 "sandbox $_sb\${NL}pid $_pp" "$_msg"; fi
          if ! have nsenter; then absent "pod.$_i" 'nsenter not installed'
          elif [ -n "$_np" ]; then sect "pod.$_i" nsenter --net="$_np" sh -c "$POD" netctl-pod "$M" "$_i" </dev/null
          else sect "pod.$_i" nsenter -t "$_pp" -n sh -c "$POD" netctl-pod "$M" "$_i" </dev/null; fi
        else
          put "pod.$_i.runtime" 1 '' "$_msg"
          absent "pod.$_i" 'not found in the container runtime'
        fi ;;
      *) absent "pod.$_i" 'no netns or PID known for this pod' ;;
    esac
  done <<'${podEnd}'
${podLines(pods).join('\n')}
${podEnd}
}

iptables_all() {
  if ! have iptables-save; then absent iptables 'iptables-save not installed'; return 0; fi
  sect iptables iptables-save -c
  # Both variants installed: rules may hide in the one iptables does not use.
  if have iptables-legacy-save && have iptables-nft-save; then
    case $(iptables-save --version 2>/dev/null) in
      *nf_tables*) sect iptables-legacy iptables-legacy-save -c ;;
      *) sect iptables-nft iptables-nft-save -c ;;
    esac
  fi
}

# The recent match's address lists (kube-proxy's ClientIP affinity), with the kernel's clock to age them:
# /proc/timer_list's first lines hold the monotonic time and jiffies (sed stops reading there).
xt_recent() {
  sed -n '1,/^jiffies/p' /proc/timer_list | grep -E '^(now at|jiffies:) '
  for _f in /proc/net/xt_recent/*; do
    [ -f "$_f" ] || continue
    printf 'table %s\n' "\${_f##*/}"
    cat "$_f"
  done
}
xt_recent_all() {
  if [ ! -d /proc/net/xt_recent ]; then absent xt-recent 'no /proc/net/xt_recent (no recent match in this netns)'; return 0; fi
  sect xt-recent xt_recent
}

# conntrack's counters; absent when the conntrack module is not loaded in this netns
ct_counters() {
  if [ ! -e /proc/sys/net/netfilter/nf_conntrack_count ]; then absent conntrack-counters 'no /proc/sys/net/netfilter/nf_conntrack_count (conntrack not loaded)'; return 0; fi
  sect conntrack-counters grep -s -H '' /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max
}

# Only translated flows: the original destination differs from the reply's source (a ClusterIP
# or NodePort DNATed to an endpoint), as conntrack --dst-nat tells them, in awk for /proc too.
ct_dnat() {
  awk '{ d = ""; r = ""; n = 0
    for (i = 1; i <= NF; i++) {
      if ($i ~ /^src=/) { n++; if (n == 2) r = substr($i, 5) }
      else if ($i ~ /^dst=/ && n == 1 && d == "") d = substr($i, 5)
    }
    if (n >= 2 && d != r) print }'
}
# At most CT_LIMIT Service-flow entries (one more is read, so the parser can tell the list was cut).
# Without awk, the first entries of every kind, as probes before the filter read them.
ct_list() {
  if have awk; then printf 'limit %s dnat\n' "$CT_LIMIT"; _f=ct_dnat; else printf 'limit %s\n' "$CT_LIMIT"; _f=cat; fi
  if have conntrack; then tmo conntrack -L -o extended | $_f | head -n $((CT_LIMIT + 1))
  else $_f < /proc/net/nf_conntrack | head -n $((CT_LIMIT + 1)); fi
  return 0
}
ct_entries() {
  if have conntrack || [ -r /proc/net/nf_conntrack ]; then sect conntrack ct_list
  else absent conntrack 'conntrack not installed and no /proc/net/nf_conntrack'; fi
}

bird_all() {
  if [ ! -S "$P_BIRD" ]; then
    absent bird-protocols "no BIRD control socket at $P_BIRD"; absent bird-routes "no BIRD control socket at $P_BIRD"; return 0
  fi
  if have birdcl; then _b=birdcl; elif have birdc; then _b=birdc; else
    absent bird-protocols 'birdcl/birdc not installed'; absent bird-routes 'birdcl/birdc not installed'; return 0
  fi
  sect bird-protocols tmo "$_b" -s "$P_BIRD" show protocols all
  sect bird-routes tmo "$_b" -s "$P_BIRD" show route all
}

cni_conf() {
  for _f in "$P_CNI_CONF"/*; do
    [ -f "$_f" ] || continue
    case $_f in *"$NL"*) continue ;; esac
    printf '%s F %s\\n' "$M" "\${_f##*/}"
    head -c 65536 "$_f"
    printf '\\n'
  done
  return 0
}

cni_bin() {
  for _f in "$P_CNI_BIN"/*; do
    case $_f in *"$NL"*) continue ;; esac
    [ -f "$_f" ] && [ -x "$_f" ] && printf '%s\\n' "\${_f##*/}"
  done
  return 0
}

# ethtool -k of tunnel devices (by name, by DEVTYPE in sysfs, or TUN). The device list comes
# from /proc/sys/net, which always shows the current netns (/sys may be mounted for another).
offloads() {
  for _d in /proc/sys/net/ipv4/conf/*; do
    _n=\${_d##*/}; _t=
    case $_n in all|default) continue ;; esac
    case $_n in flannel.*|flannel0|vxlan.calico|vxlan-v6.calico|tunl0|cilium_vxlan|weave|vxlan*) _t=1 ;; esac
    _s=/sys/class/net/$_n
    if [ -z "$_t" ] && [ -r "$_s/uevent" ]; then
      while IFS= read -r _l; do case $_l in DEVTYPE=vxlan|DEVTYPE=geneve) _t=1 ;; esac; done < "$_s/uevent"
    fi
    [ -e "$_s/tun_flags" ] && _t=1
    [ -n "$_t" ] || continue
    printf '%s F %s\\n' "$M" "$_n"
    ethtool -k "$_n" 2>&1
  done
  return 0
}

# Daemons of interest that live in this network namespace.
procs() {
  for _p in /proc/[0-9]*; do
    [ "$_p/ns/net" -ef /proc/self/ns/net ] || continue
    { read -r _c < "$_p/comm"; } 2>/dev/null || continue
    case $_c in
      flanneld|bird|bird6|calico-node|calico-felix|netctl-udp-for*) ;;
      node|nodejs) case $(tr '\\000' ' ' < "$_p/cmdline" 2>/dev/null) in *netctl-udp-forwarder*) ;; *) continue ;; esac ;;
      *) continue ;;
    esac
    printf '%s\\t%s\\t' "\${_p#/proc/}" "$_c"
    tr '\\000' ' ' < "$_p/cmdline" 2>/dev/null
    printf '\\n'
  done
  return 0
}

printf '%s PROBE ${PROBE_FORMAT}\\n' "$M"
tool kernel uname uname -r
tool links ip ip -j -d link show
tool addresses ip ip -j addr show
tool routes4 ip ip -j -4 route show table all
v6 routes6 -j -6 route show table all
tool rules4 ip ip -j -4 rule show
v6 rules6 -j -6 rule show
tool neighbours ip ip -j neigh show nud all
tool fdb bridge bridge -j fdb show
sect sysctls sysctls
pods
iptables_all
tool nftables nft nft -j list ruleset
tool ipset ipset ipset save
xt_recent_all
ct_counters
ct_entries
bird_all
if [ -e "$P_SUBNET_ENV" ]; then sect flannel-subnet-env cat "$P_SUBNET_ENV"; else absent flannel-subnet-env "no file at $P_SUBNET_ENV"; fi
if [ -d "$P_CNI_CONF" ]; then sect cni-conf cni_conf; else absent cni-conf "no directory at $P_CNI_CONF"; fi
if [ -d "$P_CNI_BIN" ]; then sect cni-bin cni_bin; else absent cni-bin "no directory at $P_CNI_BIN"; fi
tool offloads ethtool offloads
sect processes procs
printf '%s DONE\\n' "$M"
`
  const sections = [
    ...NODE_SECTIONS,
    ...pods.flatMap((p, i) => [
      ...(podEntry(p) === 'cri' ? [`pod.${i}.runtime`] : []),
      `pod.${i}`,
      ...POD_SECTIONS.map((s) => `pod.${i}.${s}`),
    ]),
    ...LATE_SECTIONS,
  ]
  return {script, marker, sections, paths}
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as Partial<T>
}
