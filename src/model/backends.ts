/**
 * Every overlay backend netctl knows, listed once. The lists each layer uses
 * are derived from this table: the types `backend set` takes, the backends
 * `lab up` builds (and those a lab can only be switched to), and the ones
 * Kubernetes detection calls supported, and the CNI each belongs to (who
 * plumbs pods, which agents run, whether NetworkPolicies are enforced). The
 * order is the one users see in help and errors.
 */
/** The CNI running the pod network: flannel's, Calico's, or Canal (Calico's plugin and Felix over flannel's overlay). */
export type BackendCni = 'flannel' | 'calico' | 'canal'

const BACKEND_TABLE = {
  'flannel-vxlan': {settable: true, lab: 'up', detectable: true, cni: 'flannel'},
  'flannel-host-gw': {settable: true, lab: 'up', detectable: true, cni: 'flannel'},
  'flannel-udp': {settable: true, lab: 'up', detectable: true, cni: 'flannel'},
  'calico-bgp': {settable: true, lab: 'up', detectable: true, cni: 'calico'},
  // route reflectors: calico-bgp's kernel state, only BIRD's peers differ, so not a switch target
  'calico-rr': {settable: false, lab: 'up', detectable: true, cni: 'calico'},
  'calico-vxlan': {settable: true, lab: 'up', detectable: true, cni: 'calico'},
  // CrossSubnet needs nothing `lab up` does not make already: a lab is switched to it with `backend set`
  'calico-vxlan-crosssubnet': {settable: true, lab: 'switch', detectable: false, cni: 'calico'},
  'calico-ipip': {settable: true, lab: 'none', detectable: true, cni: 'calico'},
  'calico-ipip-crosssubnet': {settable: true, lab: 'none', detectable: false, cni: 'calico'},
  // Calico's CNI plugin and Felix's policy over flannel's vxlan (no BIRD). Not a switch target: leaving it
  // changes the CNI. Kubernetes detection names its dataplane flannel-vxlan with cni canal (so that
  // `backend set` switches flannel's backend inside Canal), so not detectable under this name.
  canal: {settable: false, lab: 'up', detectable: false, cni: 'canal'},
} as const satisfies Record<
  string,
  {settable: boolean; lab: 'up' | 'switch' | 'none'; detectable: boolean; cni: BackendCni}
>

type Table = typeof BACKEND_TABLE
/** Every backend name netctl knows (what a cluster can be configured with). */
export type BackendName = keyof Table
type NamesWhere<F extends keyof Table[BackendName], V> = {
  [N in BackendName]: Table[N][F] extends V ? N : never
}[BackendName]

export const BACKEND_NAMES = Object.keys(BACKEND_TABLE) as BackendName[]

function namesWhere<N extends BackendName>(keep: (row: Table[BackendName]) => boolean): readonly N[] {
  return BACKEND_NAMES.filter((n) => keep(BACKEND_TABLE[n])) as N[]
}

/** Backends `backend set` takes. */
export type SettableBackend = NamesWhere<'settable', true>
export const SETTABLE_BACKENDS = namesWhere<SettableBackend>((b) => b.settable)

/** Backends `lab up` builds. */
export type LabUpBackend = NamesWhere<'lab', 'up'>
export const LAB_UP_BACKENDS = namesWhere<LabUpBackend>((b) => b.lab === 'up')

/** Backends a lab has a module for: those `lab up` builds and those it can only be switched to. */
export type LabModuleBackend = NamesWhere<'lab', 'up' | 'switch'>
export const LAB_MODULE_BACKENDS = namesWhere<LabModuleBackend>((b) => b.lab !== 'none')

/** Backends a Kubernetes cluster is supported with when detection finds them. */
export const DETECTABLE_BACKENDS: ReadonlySet<string> = new Set(namesWhere((b) => b.detectable))

/** The CNI a backend belongs to. */
export function backendCni(name: BackendName): BackendCni {
  return BACKEND_TABLE[name].cni
}

/** Felix runs and enforces NetworkPolicies (Calico, Canal); plain flannel has no policy engine. */
export function cniRunsFelix(cni: BackendCni): boolean {
  return cni !== 'flannel'
}

/** flanneld programs the overlay between nodes (flannel, Canal). */
export function cniRunsFlanneld(cni: BackendCni): boolean {
  return cni !== 'calico'
}
