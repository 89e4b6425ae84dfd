import type {NodeState, PodNetnsState, SectionCause, SectionResult} from '../model/node-state.js'
import {parseBirdProtocols, parseBirdRoutes} from './parse/bird.js'
import {parseConntrackCounters, parseConntrackEntries} from './parse/conntrack.js'
import {ParseError} from './parse/errors.js'
import {parseAddresses, parseFdb, parseLinks, parseNeighbours, parseRoutes, parseRules} from './parse/iproute.js'
import {parseIpsetSave} from './parse/ipset.js'
import {parseIptablesSave} from './parse/iptables.js'
import {
  parseCniConf,
  parseEnvFile,
  parseKernel,
  parseNameList,
  parseNftJson,
  parseOffloads,
  parseProcesses,
  parseSysctls,
} from './parse/misc.js'
import {parseNftRuleset} from './parse/nft.js'
import {parseXtRecent} from './parse/xt-recent.js'
import {type Probe, SECTIONS_SINCE} from './probe.js'
import type {RawSection, SplitOutput} from './sections.js'

type Sections = Record<string, SectionResult>

/** The pod a probe entered, as the collector knows it. */
export interface ProbedPod {
  name: string
  namespace: string
  netns?: string
  pid?: number
}

export interface AssembledNode {
  state: NodeState
  /** sections that failed or were cut short, as "name: why" (absent ones are not problems) */
  problems: string[]
}

const MAX_MESSAGE = 300

function clip(s: string): string {
  const one = s.replace(/\s*\n\s*/g, ' | ').trim()
  return one.length > MAX_MESSAGE ? `${one.slice(0, MAX_MESSAGE)}...` : one
}

/**
 * What made a raw section fail, for the fix: judged from the section (a pod's
 * netns, its runtime lookup), the exit code (124 timeout, 126/127 not run) and
 * what the command said.
 */
export function failureCause(section: string, raw: Pick<RawSection, 'status' | 'code' | 'message'>): SectionCause {
  if (raw.status === 'truncated') return 'truncated'
  if (raw.code === 124) return 'timeout'
  const said = raw.message ?? ''
  if (/permission denied|operation not permitted|must be root|are you root/i.test(said)) return 'permission'
  if (/^pod\.\d+\.runtime$/.test(section)) return 'runtime'
  if (/^pod\.\d+$/.test(section)) return 'netns-gone'
  if (raw.code === 127 || /command not found|not found$/im.test(said)) return 'missing-tool'
  if (/option .* is unknown|unknown option|invalid option|unrecognized option|illegal option/i.test(said))
    return 'tool-too-old'
  return 'failed'
}

/** Why a raw section failed, in one line. */
function failure(raw: RawSection): string {
  if (raw.status === 'truncated') return raw.message ?? 'output ended before the section did'
  if (raw.code === 124) return `timed out${raw.message ? `: ${clip(raw.message)}` : ''}`
  return raw.message ? clip(raw.message) : `exit code ${raw.code ?? '?'}`
}

/**
 * Turn one node's split probe output into its NodeState. Each section is
 * parsed on its own: a section that failed on the node, was cut short, or does
 * not parse is recorded with its status and why; the others still count.
 */
export function assembleNodeState(
  node: string,
  probe: Probe,
  split: SplitOutput,
  pods: ProbedPod[],
  collectedAt: string,
): AssembledNode {
  const sections: Sections = {}
  const problems: string[] = []
  const state: NodeState = {
    node,
    collectedAt,
    links: [],
    addresses: [],
    routes: [],
    rules: [],
    neighbours: [],
    fdb: [],
    sysctls: {},
    processes: [],
    pods: [],
    sections,
  }

  /** Run the parser of one section and record how it went. */
  function take<T>(
    name: string,
    parse: (body: string) => T,
    into: Sections = sections,
    key = name,
    label = name,
  ): T | undefined {
    const raw = split.sections.get(name)
    if (!raw) {
      // never printed: an older probe format did not read it, or the probe did not get that far
      const since = SECTIONS_SINCE[name]
      if (since !== undefined && split.format !== undefined && split.format < since) {
        into[key] = {status: 'absent', message: `not read by probe format ${split.format}`}
        return undefined
      }
      if (probe.sections.includes(name)) {
        into[key] = {status: 'truncated', message: 'the probe output ended before this section', cause: 'truncated'}
        problems.push(`${label}: not reached`)
      }
      return undefined
    }
    if (raw.status === 'absent') {
      into[key] = {status: 'absent', ...(raw.message ? {message: raw.message} : {})}
      return undefined
    }
    if (raw.status !== 'ok') {
      into[key] = {status: raw.status, message: failure(raw), cause: failureCause(name, raw)}
      problems.push(`${label}: ${failure(raw)}`)
      return undefined
    }
    try {
      const value = parse(raw.body)
      into[key] = {status: 'ok', ...(raw.message ? {message: clip(raw.message)} : {})}
      return value
    } catch (error) {
      const message = error instanceof ParseError ? error.message : `parser failed: ${(error as Error).message}`
      // the command ran, and what it printed is not what netctl reads: a tool too old (or too new)
      into[key] = {status: 'error', message: clip(message), cause: 'tool-too-old'}
      const detail =
        error instanceof ParseError && message.startsWith(`${error.section}: `)
          ? message.slice(error.section.length + 2)
          : message
      problems.push(`${label}: ${clip(detail)}`)
      return undefined
    }
  }

  const kernel = take('kernel', (b) => parseKernel(b))
  if (kernel !== undefined) state.kernel = kernel
  state.links = take('links', (b) => parseLinks(b)) ?? []
  state.addresses = take('addresses', (b) => parseAddresses(b)) ?? []
  state.routes = [
    ...(take('routes4', (b) => parseRoutes(b, 'inet')) ?? []),
    ...(take('routes6', (b) => parseRoutes(b, 'inet6')) ?? []),
  ]
  state.rules = [
    ...(take('rules4', (b) => parseRules(b, 'inet')) ?? []),
    ...(take('rules6', (b) => parseRules(b, 'inet6')) ?? []),
  ]
  state.neighbours = take('neighbours', (b) => parseNeighbours(b)) ?? []
  state.fdb = take('fdb', (b) => parseFdb(b)) ?? []
  state.sysctls = take('sysctls', (b) => parseSysctls(b)) ?? {}

  state.pods = pods.map((pod, i) => podState(pod, i, take))

  const iptables = take('iptables', (b) => parseIptablesSave(b, {section: 'iptables'}))
  if (iptables) state.iptables = iptables
  const legacy = take('iptables-legacy', (b) => parseIptablesSave(b, {section: 'iptables-legacy', variant: 'legacy'}))
  if (legacy) state.iptablesLegacy = legacy
  const nft = take('iptables-nft', (b) => parseIptablesSave(b, {section: 'iptables-nft', variant: 'nft'}))
  if (nft) state.iptablesNft = nft
  const nftables = take('nftables', (b) => ({raw: parseNftJson(b), parsed: parseNftRuleset(b)}))
  if (nftables !== undefined) {
    state.nftables = nftables.raw
    state.nft = nftables.parsed
  }
  const ipsets = take('ipset', (b) => parseIpsetSave(b))
  if (ipsets) state.ipsets = ipsets
  const xtRecent = take('xt-recent', (b) => parseXtRecent(b))
  if (xtRecent) state.xtRecent = xtRecent
  const counters = take('conntrack-counters', (b) => parseConntrackCounters(b))
  const entries = take('conntrack', (b) => parseConntrackEntries(b))
  if (counters || entries) state.conntrack = {...counters, entries: [], ...entries}

  const sessions = take('bird-protocols', (b) => parseBirdProtocols(b))
  const birdRoutes = take('bird-routes', (b) => parseBirdRoutes(b))
  if (sessions || birdRoutes) state.bird = {sessions: sessions ?? [], routes: birdRoutes ?? []}

  const env = take('flannel-subnet-env', (b) => parseEnvFile(b))
  if (env) state.flannelSubnetEnv = env
  const files = take('cni-conf', (b) => parseCniConf(b))
  const plugins = take('cni-bin', (b) => parseNameList(b))
  if (files || plugins)
    state.cni = {
      confDir: probe.paths.cniConfDir,
      files: files ?? [],
      binDir: probe.paths.cniBinDir,
      plugins: plugins ?? [],
    }
  const offloads = take('offloads', (b) => parseOffloads(b))
  if (offloads) state.offloads = offloads
  state.processes = take('processes', (b) => parseProcesses(b)) ?? []
  return {state, problems}
}

type Take = <T>(
  name: string,
  parse: (body: string) => T,
  into?: Sections,
  key?: string,
  label?: string,
) => T | undefined

function podState(pod: ProbedPod, index: number, take: Take): PodNetnsState {
  const sections: Sections = {}
  const label = (s: string): string => `pod ${pod.namespace}/${pod.name} ${s}`
  // a pod known only by name was looked up in the container runtime first (probe.ts cri_find)
  const found = take(`pod.${index}.runtime`, (b) => runtimeEntry(b), sections, 'runtime', label('runtime'))
  const via =
    pod.netns ??
    (pod.pid !== undefined
      ? `/proc/${pod.pid}/ns/net`
      : (found?.netns ?? (found?.pid !== undefined ? `/proc/${found.pid}/ns/net` : '')))
  const ps: PodNetnsState = {
    namespace: pod.namespace,
    name: pod.name,
    netns: via,
    links: [],
    addresses: [],
    routes: [],
    neighbours: [],
    sections,
  }
  // entering the namespace: its own section; when it fails there is nothing inside
  const entered = take(`pod.${index}`, () => true, sections, 'netns', label('netns'))
  if (!entered) return ps
  const p = `pod.${index}.`
  const links = take(`${p}links`, (b) => parseLinks(b, 'links'), sections, 'links', label('links'))
  const addresses = take(
    `${p}addresses`,
    (b) => parseAddresses(b, 'addresses'),
    sections,
    'addresses',
    label('addresses'),
  )
  const r4 = take(`${p}routes4`, (b) => parseRoutes(b, 'inet', 'routes4'), sections, 'routes4', label('routes4'))
  const r6 = take(`${p}routes6`, (b) => parseRoutes(b, 'inet6', 'routes6'), sections, 'routes6', label('routes6'))
  const neighbours = take(
    `${p}neighbours`,
    (b) => parseNeighbours(b, 'neighbours'),
    sections,
    'neighbours',
    label('neighbours'),
  )
  ps.links = links ?? []
  ps.addresses = addresses ?? []
  ps.routes = [...(r4 ?? []), ...(r6 ?? [])]
  ps.neighbours = neighbours ?? []
  return ps
}

/** The runtime section's body: `sandbox ID`, then `netns PATH` or `pid N`. */
export function runtimeEntry(body: string): {sandbox: string; netns?: string; pid?: number} {
  const out: {sandbox: string; netns?: string; pid?: number} = {sandbox: ''}
  for (const line of body.split('\n')) {
    const sp = line.indexOf(' ')
    const [k, v] = sp < 0 ? [line, ''] : [line.slice(0, sp), line.slice(sp + 1)]
    if (k === 'sandbox') out.sandbox = v
    else if (k === 'netns' && v.startsWith('/')) out.netns = v
    else if (k === 'pid' && /^[1-9]\d*$/.test(v)) out.pid = Number(v)
  }
  if (!out.sandbox || (out.netns === undefined && out.pid === undefined))
    throw new ParseError(
      'runtime',
      `expected a sandbox and a netns path or PID, got ${JSON.stringify(body.slice(0, 120))}`,
    )
  return out
}
