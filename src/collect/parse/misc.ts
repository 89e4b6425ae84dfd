import type {Process} from '../../model/node-state.js'
import {subRecords} from '../sections.js'
import {ParseError} from './errors.js'
import {nftDocument} from './nft.js'

/**
 * /proc/sys/net/ipv4/conf/flannel.1/rp_filter → net.ipv4.conf.flannel/1.rp_filter:
 * the name sysctl(8) gives it (a '.' inside one path element becomes '/').
 */
export function sysctlKey(path: string): string {
  return path
    .replace(/^\/proc\/sys\//, '')
    .split('/')
    .map((part) => part.replace(/\./g, '/'))
    .join('.')
}

/** `grep -H '' FILE...` over /proc/sys → sysctl name → value. */
export function parseSysctls(text: string, section = 'sysctls'): Record<string, string> {
  const out: Record<string, string> = {}
  text.split('\n').forEach((line, idx) => {
    if (line.trim() === '') return
    // interface names cannot hold ':', so the first one ends the path
    const at = line.indexOf(':')
    if (at <= 0 || !line.startsWith('/proc/sys/'))
      throw new ParseError(section, `expected /proc/sys/PATH:VALUE, got '${line.slice(0, 60)}'`, idx + 1)
    out[sysctlKey(line.slice(0, at))] = line.slice(at + 1).trim()
  })
  return out
}

/** flannel's subnet.env: KEY=VALUE lines. */
export function parseEnvFile(text: string, section = 'flannel-subnet-env'): Record<string, string> {
  const out: Record<string, string> = {}
  text.split('\n').forEach((raw, idx) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line)
    if (!m) throw new ParseError(section, `expected KEY=VALUE, got '${line.slice(0, 60)}'`, idx + 1)
    out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1')
  })
  return out
}

/** The cni-conf section: one sub-record per file in the conf dir. */
export function parseCniConf(text: string): Array<{name: string; content: string}> {
  return subRecords(text).map((r) => ({name: r.name, content: r.text}))
}

/** The cni-bin section: one executable name per line. */
export function parseNameList(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .sort()
}

/**
 * The offloads section: per tunnel device, `ethtool -k` output
 * ("feature: on|off [fixed]", sub-features indented) → device → feature → on.
 */
export function parseOffloads(text: string, section = 'offloads'): Record<string, Record<string, boolean>> {
  const out: Record<string, Record<string, boolean>> = {}
  for (const rec of subRecords(text)) {
    const features: Record<string, boolean> = {}
    let odd: string | undefined
    for (const line of rec.text.split('\n')) {
      const t = line.trim()
      if (t === '' || /^Features for /.test(t)) continue
      const m = /^([\w-]+):\s+(on|off)\b/.exec(t)
      if (m) features[m[1]!] = m[2] === 'on'
      else odd ??= t
    }
    // a device ethtool could not read (it said why) is left out; text that is not ethtool's is an error
    if (Object.keys(features).length === 0 && odd !== undefined) {
      if (/^(Cannot|Could not|netlink error|no offload info|Operation not supported)/i.test(odd)) continue
      throw new ParseError(section, `${rec.name}: not ethtool -k output: '${odd.slice(0, 60)}'`)
    }
    out[rec.name] = features
  }
  return out
}

/** The processes section: PID<TAB>COMM<TAB>ARGS lines. */
export function parseProcesses(text: string, section = 'processes'): Process[] {
  const out: Process[] = []
  text.split('\n').forEach((line, idx) => {
    if (line.trim() === '') return
    const m = /^(\d+)\t([^\t]*)\t(.*)$/.exec(line)
    if (!m) throw new ParseError(section, `expected PID, name and arguments, got '${line.slice(0, 60)}'`, idx + 1)
    out.push({pid: Number(m[1]), name: m[2]!, args: m[3]!.trim()})
  })
  return out
}

export function parseKernel(text: string, section = 'kernel'): string {
  const v = text.trim()
  if (v === '' || /\s/.test(v)) throw new ParseError(section, `expected a kernel release, got '${v.slice(0, 60)}'`)
  return v
}

/** `nft -j list ruleset`, kept as nft printed it (after checking it is nft's JSON). */
export function parseNftJson(text: string, section = 'nftables'): unknown {
  return nftDocument(text, section).document
}
