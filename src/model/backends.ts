/**
 * Every overlay backend netctl knows, listed once. The lists each layer uses
 * are derived from this table: the types `backend set` takes, the backends
 * `lab up` builds (and those a lab can only be switched to), and the ones
 * Kubernetes detection calls supported. The order is the one users see in
 * help and errors.
 */
const BACKEND_TABLE = {
  'flannel-vxlan': {settable: true, lab: 'up', detectable: true},
  'flannel-host-gw': {settable: true, lab: 'up', detectable: true},
  'flannel-udp': {settable: true, lab: 'up', detectable: true},
  'calico-bgp': {settable: true, lab: 'up', detectable: true},
  // route reflectors: calico-bgp's kernel state, only BIRD's peers differ, so not a switch target
  'calico-rr': {settable: false, lab: 'up', detectable: true},
  'calico-vxlan': {settable: true, lab: 'up', detectable: true},
  // CrossSubnet needs nothing `lab up` does not make already: a lab is switched to it with `backend set`
  'calico-vxlan-crosssubnet': {settable: true, lab: 'switch', detectable: false},
  'calico-ipip': {settable: true, lab: 'none', detectable: true},
  'calico-ipip-crosssubnet': {settable: true, lab: 'none', detectable: false},
} as const satisfies Record<string, {settable: boolean; lab: 'up' | 'switch' | 'none'; detectable: boolean}>

type Table = typeof BACKEND_TABLE
/** Every backend name netctl knows (what a cluster can be configured with). */
export type BackendName = keyof Table
type NamesWhere<F extends keyof Table[BackendName], V> = {[N in BackendName]: Table[N][F] extends V ? N : never}[BackendName]

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
