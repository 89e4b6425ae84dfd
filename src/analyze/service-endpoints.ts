/**
 * A Service's endpoints as kube-proxy reads them from the EndpointSlices
 * (kubernetes pkg/proxy/endpointslicecache.go and topology.go): which are
 * ready, which serve while terminating, which it sends to.
 *
 * Topology-aware routing as kube-proxy applies it (kubernetes pkg/proxy/topology.go,
 * topologyModeFromHints and availableForTopology): when every ready endpoint of a
 * Service carries a hint for a node (PreferSameNode) or a zone (PreferSameZone,
 * PreferClose, the topology-mode annotation), and one is hinted for this node or its
 * zone, the node's Cluster policy sends only to the endpoints hinted so; otherwise
 * to all. Node hints are read first, as with the PreferSameTrafficDistribution gate
 * on (its default since Kubernetes 1.34): a cluster writes them only with the gate on. Pure.
 */
import type {InventoryEndpoint, InventoryService} from '../model/inventory.js'

type Conditions = Pick<InventoryEndpoint, 'conditions'>

/** A Service's endpoints that are objects at all: a hand-written snapshot the schema lets through may hold anything there. */
export const endpointsOf = (svc: Pick<InventoryService, 'endpoints'>): InventoryEndpoint[] =>
  Array.isArray(svc.endpoints) ? svc.endpoints.filter((e) => e !== null && typeof e === 'object') : []

/** discovery/v1 as kube-proxy reads it: a nil `ready` is true. */
export const isReady = (e: Conditions): boolean => e.conditions?.ready !== false

/** Serving while terminating (a nil `serving` is true, a nil `terminating` false): kube-proxy's fallback when nothing is ready. */
export const isServingTerminating = (e: Conditions): boolean =>
  e.conditions?.serving !== false && e.conditions?.terminating === true

/** The endpoints kube-proxy sends to (CategorizeEndpoints, topology aside): the ready ones, else those serving while terminating. */
export function usableEndpoints<T extends Conditions>(eps: readonly T[]): T[] {
  const ready = eps.filter(isReady)
  return ready.length > 0 ? ready : eps.filter(isServingTerminating)
}

/** An endpoint as the hints see it. */
export interface HintedEndpoint {
  ready: boolean
  forZones: readonly string[]
  forNodes: readonly string[]
}

/** The node (or its zone) a topology mode keeps a node's traffic to. */
export type Topology = {mode: 'PreferSameNode'; node: string} | {mode: 'PreferSameZone'; zone: string}

/** The zone and node names an EndpointSlice endpoint is hinted for. */
export function hintsOf(e: Pick<InventoryEndpoint, 'hints'>): {forZones: string[]; forNodes: string[]} {
  const names = (xs: unknown): string[] =>
    Array.isArray(xs)
      ? xs.flatMap((x: unknown) => {
          const name = (x as {name?: unknown} | null)?.name
          return typeof name === 'string' ? [name] : []
        })
      : []
  return {forZones: names(e.hints?.forZones), forNodes: names(e.hints?.forNodes)}
}

/**
 * The topology mode a node's kube-proxy takes for these endpoints: undefined (all endpoints) unless every
 * ready one has a hint of the kind and one is for `node` (node hints) or its `zone` (zone hints).
 */
export function topologyOf(
  endpoints: Iterable<HintedEndpoint>,
  node: string,
  zone: string | undefined,
): Topology | undefined {
  let anyReady = false
  let allNode = true
  let forNode = false
  let allZone = true
  let forZone = false
  for (const e of endpoints) {
    if (!e.ready) continue
    anyReady = true
    if (e.forNodes.length === 0) allNode = false
    else if (e.forNodes.includes(node)) forNode = true
    if (e.forZones.length === 0) allZone = false
    else if (zone !== undefined && e.forZones.includes(zone)) forZone = true
  }
  if (!anyReady) return undefined
  if (allNode && forNode) return {mode: 'PreferSameNode', node}
  if (allZone && forZone && zone !== undefined) return {mode: 'PreferSameZone', zone}
  return undefined
}

/** Whether the topology lets the node's Cluster policy use the endpoint (any endpoint without one). */
export function availableFor(e: HintedEndpoint, topology: Topology | undefined): boolean {
  if (!topology) return true
  return topology.mode === 'PreferSameNode' ? e.forNodes.includes(topology.node) : e.forZones.includes(topology.zone)
}

/** How a trace or a finding says it: `zone zone-a` / `node node3`. */
export function topologyText(t: Topology): string {
  return t.mode === 'PreferSameNode' ? `node ${t.node}` : `zone ${t.zone}`
}
