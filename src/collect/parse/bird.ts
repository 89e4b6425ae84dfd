import type {BgpRoute, BgpSession} from '../../model/node-state.js'
import {ParseError} from './errors.js'

/**
 * BIRD has no JSON. These parse the text of `show protocols all` and
 * `show route [all]` as birdcl/birdc print it: BIRD 2 (the lab, bird2) and
 * BIRD 1.x (Calico's fork, per-protocol Routes line, no channels). Raw control
 * socket replies (`1002-...` reply codes) are accepted too.
 */

/**
 * birdcl output lines (with their line numbers) without the banner, a prompt
 * echo, or the reply codes of the raw control socket protocol ("1002-...",
 * continuation lines starting with one space, "0000" at the end).
 */
function birdLines(text: string): Array<{line: string; no: number}> {
  const all = text.split('\n').map((l) => l.replace(/\r$/, ''))
  const raw = all.some((l) => /^\d{4}[ -]/.test(l))
  const out: Array<{line: string; no: number}> = []
  all.forEach((original, i) => {
    let line = original
    if (raw) {
      const coded = /^(\d{4})(?:([ -])(.*))?$/.exec(line)
      if (coded) {
        if (coded[1] === '0000' || coded[1] === '0001' || coded[3] === undefined) return
        line = coded[3]
      } else if (line.startsWith(' ')) {
        line = line.slice(1)
      }
    }
    if (/^BIRD \S+ ready\.$/.test(line.trim())) return
    if (/^bird[c6l]*> /.test(line)) return
    out.push({line, no: i + 1})
  })
  return out
}

/** birdcl ends every reply with a newline: text that stops mid-line was cut short. */
function endsWhole(text: string, section: string): void {
  if (text !== '' && !text.endsWith('\n')) {
    const last = text.slice(text.lastIndexOf('\n') + 1)
    throw new ParseError(section, `output stops in the middle of a line ('${last.trim().slice(0, 40)}'): cut short`)
  }
}

const PROTO_STATES = new Set(['up', 'down', 'start', 'stop', 'flush', 'feed'])
// the Since column: a time, a date, or a date and a time
const SINCE =
  /^(\d{4}-\d\d-\d\d(?:\s+\d\d:\d\d(?::\d\d(?:\.\d+)?)?)?|\d\d:\d\d(?::\d\d(?:\.\d+)?)?|[A-Z][a-z]{2}\d\d|\d{10})\s*(.*)$/

interface ProtocolHead {
  name: string
  proto: string
  state: string
  since?: string
  info: string
}

function protocolHead(line: string): ProtocolHead | undefined {
  const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*(.*)$/.exec(line)
  if (!m || !PROTO_STATES.has(m[4]!)) return undefined
  const rest = m[5]!.trim()
  const s = SINCE.exec(rest)
  return {name: m[1]!, proto: m[2]!, state: m[4]!, ...(s ? {since: s[1]!} : {}), info: (s ? s[2]! : rest).trim()}
}

/** `show protocols [all]` → the BGP sessions (other protocols are not sessions). */
export function parseBirdProtocols(text: string, section = 'bird-protocols'): BgpSession[] {
  endsWhole(text, section)
  const lines = birdLines(text)
  const sessions: BgpSession[] = []
  let current: BgpSession | undefined
  let sawHeader = false
  lines.forEach(({line, no}) => {
    if (line.trim() === '') return
    if (/^name\s+proto\s+table\s+state\s+since\s+info/i.test(line.trim())) {
      sawHeader = true
      return
    }
    if (!/^\s/.test(line)) {
      const head = protocolHead(line)
      if (!head) {
        if (!sawHeader) throw new ParseError(section, `not BIRD protocol output: '${line.slice(0, 60)}'`, no)
        throw new ParseError(section, `unrecognized protocol line '${line.slice(0, 60)}'`, no)
      }
      current = undefined
      if (head.proto !== 'BGP') return
      const [bgpState = '', ...info] = head.info.split(/\s+/)
      current = {
        name: head.name,
        state: head.state,
        bgpState: bgpState || (head.state === 'up' ? 'Established' : 'Idle'),
      }
      if (head.since) current.since = head.since
      if (info.length > 0) current.info = info.join(' ')
      sessions.push(current)
      return
    }
    if (!current) return
    const kv = /^\s+([A-Za-z][A-Za-z0-9 .-]*?):\s*(.*)$/.exec(line)
    if (!kv) return
    const key = kv[1]!
    const value = kv[2]!.trim()
    switch (key) {
      case 'BGP state':
        if (value) current.bgpState = value
        break
      case 'Neighbor address':
        // BIRD 2 may add "%iface" for link-local peers
        current.neighborAddress = value.split('%')[0]
        break
      case 'Neighbor AS':
        if (/^\d+$/.test(value)) current.neighborAs = Number(value)
        break
      case 'Local AS':
        if (/^\d+$/.test(value)) current.localAs = Number(value)
        break
      case 'Last error':
        current.lastError = value
        break
      case 'Neighbor ID':
        current.neighborId = value
        break
      case 'Session':
        current.session = value
        break
      case 'Source address':
        current.sourceAddress = value
        break
      case 'Routes': {
        // "1 imported, 2 filtered, 1 exported, 1 preferred"; BIRD 2 has one per channel
        const r = current.routes ?? {imported: 0, exported: 0}
        for (const [, n, what] of value.matchAll(/(\d+)\s+(imported|exported|filtered|preferred)/g)) {
          const k = what as 'imported' | 'exported' | 'filtered' | 'preferred'
          r[k] = (r[k] ?? 0) + Number(n)
        }
        current.routes = r
        break
      }
      default:
    }
  })
  if (!sawHeader && sessions.length === 0 && lines.some((l) => l.line.trim() !== '')) {
    throw new ParseError(section, 'no protocol table in BIRD output')
  }
  return sessions
}

/** One next hop of a BIRD route ("via 10.0.0.2 on eth0 [onlink] [weight 1]" or "dev cali123"). */
interface BirdHop {
  gateway?: string
  dev?: string
  weight?: number
}

function hopOf(text: string): BirdHop | undefined {
  const via = /\bvia\s+(\S+)(?:\s+on\s+(\S+))?(?:.*?\bweight\s+(\d+))?/.exec(text)
  if (via) return {gateway: via[1]!, ...(via[2] ? {dev: via[2]} : {}), ...(via[3] ? {weight: Number(via[3])} : {})}
  const dev = /(?:^|\s)dev\s+(\S+)/.exec(text)
  if (dev) return {dev: dev[1]!}
  return undefined
}

// PREFIX? HEAD [PROTO SINCE (from ADDR)?] (*)? (PREF[/METRIC])? ([ORIGIN])?
const ROUTE_LINE =
  /^(\S+)?\s+(.*?)\s*\[(\S+)(?:\s+([^\]]*?))?(?:\s+from\s+(\S+))?\]\s*(\*)?\s*(?:\(([^)]*)\))?\s*(?:\[([^\]]*)\])?\s*$/
const ROUTE_TYPES = /^(unicast|blackhole|unreachable|prohibit|multipath|recursive|dev|via)\b/

/** `show route [all]` → routes, best ones marked primary. */
export function parseBirdRoutes(text: string, section = 'bird-routes'): BgpRoute[] {
  endsWhole(text, section)
  const lines = birdLines(text)
  const routes: BgpRoute[] = []
  let prefix: string | undefined
  let current: (BgpRoute & {nexthops?: BirdHop[]}) | undefined
  lines.forEach(({line, no}) => {
    if (line.trim() === '' || /^Table\s+\S+:$/.test(line.trim())) return
    // BIRD indents next hops and attributes with a tab; a further route for the same prefix with spaces
    if (line.startsWith('\t') || (/^\s/.test(line) && !ROUTE_LINE.test(line.trimEnd()))) {
      // continuation: a next hop, or an attribute line of `show route all`
      if (!current) throw new ParseError(section, `attribute line before any route: '${line.trim().slice(0, 60)}'`, no)
      const t = line.trim()
      const attr = /^([A-Za-z][\w.]*):\s*(.*)$/.exec(t)
      if (attr) {
        if (attr[1] === 'BGP.as_path') current.asPath = attr[2]!.trim()
        return
      }
      const hop = hopOf(t)
      if (hop) addHop(current, hop)
      return
    }
    const m = ROUTE_LINE.exec(line.trimEnd())
    if (!m) throw new ParseError(section, `unrecognized route line '${line.trim().slice(0, 80)}'`, no)
    if (m[1] !== undefined) {
      if (!/^[0-9a-fA-F.:]+\/\d+$/.test(m[1])) throw new ParseError(section, `'${m[1]}' is not a prefix`, no)
      prefix = m[1]
    }
    if (prefix === undefined) throw new ParseError(section, 'route line without a prefix', no)
    const head = m[2]!.trim()
    current = {prefix, protocol: m[3]!, primary: m[6] === '*'}
    const type = ROUTE_TYPES.exec(head)?.[1]
    // BIRD 1.x prints no type for plain routes: "via ..." or "dev ..." means unicast
    if (type) current.type = type === 'dev' || type === 'via' ? 'unicast' : type
    if (m[5]) current.from = m[5]
    const hop = hopOf(head)
    if (hop) addHop(current, hop)
    routes.push(current)
  })
  return routes.map((r) => {
    const {nexthops, ...rest} = r
    if (!nexthops || nexthops.length <= 1) return rest
    // multipath: every hop is in nexthops, none of them is "the" gateway
    const {gateway: _g, dev: _d, ...shared} = rest
    return {...shared, nexthops}
  })
}

function addHop(route: BgpRoute & {nexthops?: BirdHop[]}, hop: BirdHop): void {
  route.nexthops = [...(route.nexthops ?? []), hop]
  if (route.nexthops.length === 1) {
    if (hop.gateway) route.gateway = hop.gateway
    if (hop.dev) route.dev = hop.dev
  }
}
