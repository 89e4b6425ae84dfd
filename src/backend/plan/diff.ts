import {type AnyItem, keyOf, lineOf} from './lines.js'
import {type Daemon, type Kind, KINDS, type NodeDesired, type NodeKernel} from './types.js'

/**
 * The difference between what a node holds and what it should hold, per kind
 * of kernel state, as the items themselves (to apply) and as printed lines (to
 * show). A device that changes is removed and added whole, and so is
 * everything on it. Pure.
 */

export interface KindDiff<T = AnyItem> {
  add: T[]
  remove: T[]
  /** items present on both sides */
  keep: number
}

export interface NodeDiff {
  node: string
  kinds: Record<Kind, KindDiff>
  daemons: {start: Daemon[]; stop: Daemon[]; keep: Daemon[]}
}

function byKey(kind: Kind, items: AnyItem[]): Map<string, AnyItem> {
  return new Map(items.map((i) => [keyOf(kind, i), i]))
}

function devOf(kind: Kind, item: AnyItem): string | undefined {
  if (kind === 'links') return (item as {name: string}).name
  return (item as {dev?: string}).dev
}

export function diffNode(current: NodeDesired, desired: NodeDesired): NodeDiff {
  const kinds = {} as Record<Kind, KindDiff>
  // a device that is recreated takes everything on it along: those count as removed and added again
  const cur = byKey('links', current.links)
  const want = byKey('links', desired.links)
  const recreated = new Set<string>()
  const curNames = new Set(current.links.map((l) => l.name))
  for (const [key, l] of want)
    if (!cur.has(key) && curNames.has((l as {name: string}).name)) recreated.add((l as {name: string}).name)
  for (const kind of KINDS) {
    const have = byKey(kind, current[kind] as AnyItem[])
    const should = byKey(kind, desired[kind] as AnyItem[])
    const d: KindDiff = {add: [], remove: [], keep: 0}
    for (const [key, item] of should) {
      const dev = devOf(kind, item)
      const onRecreated = kind !== 'links' && dev !== undefined && recreated.has(dev)
      if (!have.has(key) || onRecreated) d.add.push(item)
      else d.keep++
    }
    for (const [key, item] of have) {
      const dev = devOf(kind, item)
      const onRecreated = kind !== 'links' && dev !== undefined && recreated.has(dev)
      if (!should.has(key) || onRecreated) d.remove.push(item)
    }
    kinds[kind] = d
  }
  const has = new Set(current.daemons)
  const wants = new Set(desired.daemons)
  return {
    node: desired.node,
    kinds,
    daemons: {
      start: desired.daemons.filter((x) => !has.has(x)),
      stop: current.daemons.filter((x) => !wants.has(x)),
      keep: desired.daemons.filter((x) => has.has(x)),
    },
  }
}

export function diffIsEmpty(d: NodeDiff): boolean {
  return (
    KINDS.every((k) => d.kinds[k].add.length === 0 && d.kinds[k].remove.length === 0) &&
    d.daemons.start.length === 0 &&
    d.daemons.stop.length === 0
  )
}

/** The diff as printed lines: `+ line` / `- line` per kind. */
export function diffLines(d: NodeDiff): Record<Kind, {add: string[]; remove: string[]}> {
  const out = {} as Record<Kind, {add: string[]; remove: string[]}>
  for (const kind of KINDS) {
    out[kind] = {
      add: d.kinds[kind].add.map((i) => lineOf(kind, i)),
      remove: d.kinds[kind].remove.map((i) => lineOf(kind, i)),
    }
  }
  return out
}

/** Every item of a kernel state (for comparing a node with its snapshot). */
export function sameKernel(a: NodeKernel, b: NodeKernel): boolean {
  return KINDS.every((kind) => {
    const x = [...byKey(kind, a[kind] as AnyItem[]).keys()].sort()
    const y = [...byKey(kind, b[kind] as AnyItem[]).keys()].sort()
    return x.length === y.length && x.every((k, i) => k === y[i])
  })
}
