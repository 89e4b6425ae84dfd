import type {Conntrack, ConntrackEntry, ConntrackTuple} from '../../model/netfilter.js'
import {ParseError} from './errors.js'
import {parseSysctls} from './misc.js'

/** The conntrack-counters section: nf_conntrack_count and nf_conntrack_max. */
export function parseConntrackCounters(text: string, section = 'conntrack-counters'): {count?: number; max?: number} {
  const s = parseSysctls(text, section)
  const out: {count?: number; max?: number} = {}
  const count = s['net.netfilter.nf_conntrack_count']
  const max = s['net.netfilter.nf_conntrack_max']
  if (count !== undefined && /^\d+$/.test(count)) out.count = Number(count)
  if (max !== undefined && /^\d+$/.test(max)) out.max = Number(max)
  if (out.count === undefined && out.max === undefined)
    throw new ParseError(section, 'neither nf_conntrack_count nor nf_conntrack_max')
  return out
}

const NUMERIC = new Set(['sport', 'dport', 'type', 'code', 'id'])

/**
 * The conntrack section: `limit N` (`limit N dnat`: only translated flows,
 * the Service flows, were listed), then at most N+1 lines of
 * `conntrack -L -o extended` (or /proc/net/nf_conntrack, the same format):
 * `ipv4 2 tcp 6 431999 ESTABLISHED src=.. dst=.. sport=.. dport=.. src=.. dst=.. ... [ASSURED] mark=0 use=1`.
 * More lines than the limit: the list was cut at the limit (truncated).
 */
export function parseConntrackEntries(
  text: string,
  section = 'conntrack',
): Pick<Conntrack, 'entries' | 'truncated' | 'limit' | 'filter'> {
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  const head = /^limit (\d+)( dnat)?$/.exec(lines[0] ?? '')
  if (!head) throw new ParseError(section, `expected 'limit N' first, got '${(lines[0] ?? '').slice(0, 60)}'`, 1)
  const limit = Number(head[1])
  const body = lines.slice(1)
  const entries: ConntrackEntry[] = []
  body.slice(0, limit).forEach((line, i) => entries.push(parseEntry(line, section, i + 2)))
  return {
    entries,
    limit,
    ...(head[2] ? {filter: 'dnat' as const} : {}),
    ...(body.length > limit ? {truncated: true} : {}),
  }
}

function parseEntry(line: string, section: string, lineNo: number): ConntrackEntry {
  const words = line.trim().split(/\s+/)
  const [l3, , proto, , ...rest] = words
  if (l3 !== 'ipv4' && l3 !== 'ipv6')
    throw new ParseError(section, `expected ipv4 or ipv6 first, got '${line.slice(0, 60)}'`, lineNo)
  if (!proto) throw new ParseError(section, 'entry without a protocol', lineNo)
  const entry: ConntrackEntry = {
    family: l3 === 'ipv4' ? 'inet' : 'inet6',
    protocol: proto,
    orig: {src: '', dst: ''},
    reply: {src: '', dst: ''},
    flags: [],
  }
  let tuple: ConntrackTuple | undefined
  let srcs = 0
  for (const w of rest) {
    const eq = w.indexOf('=')
    if (eq < 0) {
      if (/^\[.*\]$/.test(w)) entry.flags.push(w.slice(1, -1))
      else if (/^\d+$/.test(w) && entry.timeout === undefined && srcs === 0) entry.timeout = Number(w)
      else if (/^[A-Z_]+$/.test(w) && srcs === 0) entry.state = w
      continue
    }
    const k = w.slice(0, eq)
    const v = w.slice(eq + 1)
    if (k === 'src') {
      srcs++
      tuple = srcs === 1 ? entry.orig : srcs === 2 ? entry.reply : undefined
      if (!tuple) throw new ParseError(section, 'more than two tuples in one entry', lineNo)
      tuple.src = v
    } else if (k === 'dst' && tuple) tuple.dst = v
    else if (NUMERIC.has(k) && tuple && /^\d+$/.test(v)) tuple[k as 'sport'] = Number(v)
    else if (k === 'mark' && /^\d+$/.test(v)) entry.mark = Number(v)
    else if (k === 'zone' && /^\d+$/.test(v)) entry.zone = Number(v)
  }
  if (!entry.orig.src || !entry.orig.dst || !entry.reply.src || !entry.reply.dst)
    throw new ParseError(section, `entry without both tuples: '${line.slice(0, 80)}'`, lineNo)
  return entry
}
