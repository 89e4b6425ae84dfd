/**
 * `ip -s -j link show`: each interface's rx/tx packet and drop counters
 * (stats64), for trace --probe's before/after reads. Text in, numbers out;
 * anything that is not the JSON iproute2 prints gives no interfaces.
 */

export interface Direction {
  packets: number
  dropped: number
}

/** interface name → its counters */
export type LinkCounters = Map<string, {rx: Direction; tx: Direction}>

/** rx/tx packets and drops of every interface of the namespace, from `ip -s -j link show`. */
export function parseLinkCounters(json: string): LinkCounters {
  const out: LinkCounters = new Map()
  let links: unknown
  try {
    links = JSON.parse(json)
  } catch {
    return out
  }
  if (!Array.isArray(links)) return out
  for (const l of links as Array<{
    ifname?: unknown
    stats64?: {rx?: Record<string, unknown>; tx?: Record<string, unknown>}
  }>) {
    if (typeof l?.ifname !== 'string' || !l.stats64) continue
    const n = (v: unknown) => (typeof v === 'number' ? v : 0)
    out.set(l.ifname, {
      rx: {packets: n(l.stats64.rx?.packets), dropped: n(l.stats64.rx?.dropped)},
      tx: {packets: n(l.stats64.tx?.packets), dropped: n(l.stats64.tx?.dropped)},
    })
  }
  return out
}
