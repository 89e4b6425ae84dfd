import type {XtRecent, XtRecentEntry, XtRecentTable} from '../../model/netfilter.js'
import {ParseError} from './errors.js'

/** The CONFIG_HZ values kernels are built with. */
const HZ_CANDIDATES = [100, 250, 300, 1000] as const

/**
 * CONFIG_HZ from the kernel's jiffies and its monotonic clock read together (/proc/timer_list's `now
 * at N nsecs` and `jiffies: J`): jiffies start at INITIAL_JIFFIES, 300 s before they wrap 32 bits
 * (2^32 − 300·HZ on a 64-bit kernel), and count HZ a second from boot, as the monotonic clock counts
 * seconds. The one HZ whose count lands within two seconds of J; none on a kernel that does not fit
 * (a 32-bit one), then the ages of the lists' entries stay unknown.
 */
export function jiffiesHz(jiffies: number, monotonicNs: number): number | undefined {
  const seconds = monotonicNs / 1e9
  const fits = HZ_CANDIDATES.filter((hz) => Math.abs(2 ** 32 + hz * (seconds - 300) - jiffies) <= 2 * hz)
  return fits.length === 1 ? fits[0] : undefined
}

const ENTRY = /^src=(\S+) ttl: (\d+) last_seen: (\d+) oldest_pkt: \d+(?: (.*))?$/

/**
 * The xt-recent section: `now at N nsecs` and `jiffies: J` (the kernel's clocks, from
 * /proc/timer_list), then each list of /proc/net/xt_recent as `table NAME` and the file's lines,
 * `src=ADDR ttl: N last_seen: J oldest_pkt: I J1, J2, ...` (xt_recent's recent_seq_show). The
 * clock lines are missing where /proc/timer_list cannot be read.
 */
export function parseXtRecent(text: string, section = 'xt-recent'): XtRecent {
  let now: number | undefined
  let jiffies: number | undefined
  const tables: XtRecentTable[] = []
  text.split('\n').forEach((raw, idx) => {
    const line = raw.trim()
    if (line === '') return
    let m: RegExpExecArray | null
    if ((m = /^now at (\d+) nsecs$/.exec(line))) now = Number(m[1])
    else if ((m = /^jiffies: (\d+)$/.exec(line))) jiffies = Number(m[1])
    else if (line.startsWith('table ')) tables.push({name: line.slice(6), entries: []})
    else if ((m = ENTRY.exec(line))) {
      const table = tables.at(-1)
      if (!table) throw new ParseError(section, `an entry before any table: '${line.slice(0, 60)}'`, idx + 1)
      const entry: XtRecentEntry = {
        address: m[1]!,
        ttl: Number(m[2]),
        lastSeen: Number(m[3]),
        stamps: (m[4] ?? '')
          .split(',')
          .map((x) => x.trim())
          .filter((x) => /^\d+$/.test(x))
          .map(Number),
      }
      table.entries.push(entry)
    } else throw new ParseError(section, `not an xt_recent line: '${line.slice(0, 60)}'`, idx + 1)
  })
  // without the clock (no /proc/timer_list) the lists still tell who is in them, not how long ago
  const hz = now === undefined || jiffies === undefined ? undefined : jiffiesHz(jiffies, now)
  return {...(jiffies !== undefined ? {jiffies} : {}), ...(hz !== undefined ? {hz} : {}), tables}
}
