/**
 * kube-proxy's sync loop for a lab node (`netctl lab kube-proxy sync`): the
 * node's Service rules rewritten from the lab's Services and EndpointSlices,
 * whatever state they were left in (flushed, a rule deleted, the nft table
 * gone), as a restarted kube-proxy's first full sync does in
 * pkg/proxy/iptables and pkg/proxy/nftables: its jumps from the built-in
 * chains ensured (left where they are when present, put back when missing),
 * its own chains declared and rewritten whole, the Service chains no Service
 * owns any more removed; in nftables mode the whole `ip kube-proxy` table
 * replaced in one transaction.
 */
import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {shjoin, shq} from '../../util/shell.js'
import {runScript} from '../netns-setup.js'
import {NsScript} from '../script.js'
import type {LabNode, LabPlan} from '../types.js'
import type {ProxyMode} from './defaults.js'
import {kubeProxyIptables, kubeProxyNftables} from './kube-proxy.js'
import {RestoreFile} from './restore.js'
import {readyAddresses} from './services.js'

const BUILTIN_CHAINS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'])
/** the per-Service chains kube-proxy names by hash: one left over from a Service or endpoint gone is deleted */
const SERVICE_CHAIN = /^KUBE-(SVC|SEP|EXT|FW|SVL)-/

export interface KubeProxySync {
  node: string
  mode: Exclude<ProxyMode, 'none'>
  /** Service ports programmed (with endpoints, or rejected without) */
  servicePorts: number
  /** endpoints behind them */
  endpoints: number
}

/** The words of an iptables-restore rule line (a "quoted comment" is one word), for a shell. */
function restoreWords(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!)
}

/**
 * The iptables-mode sync script: the built-in chains' jumps checked (-C) and
 * put back where missing, then `iptables-restore --noflush` of kube-proxy's
 * own chains (each declared chain is flushed and refilled), then the stale
 * Service chains removed. Returns what goes in the rules file.
 */
function iptablesSync(s: NsScript, full: RestoreFile, rulesFile: string): RestoreFile {
  const own = new RestoreFile()
  for (const {table, chains, rules} of full.contents()) {
    for (const c of chains) own.chain(table, c)
    for (const line of rules) {
      const [op, chain, ...rest] = restoreWords(line)
      if (!BUILTIN_CHAINS.has(chain!)) {
        own.rule(table, line)
        continue
      }
      // `-I CHAIN N spec` keeps kube-proxy's place among the other agents' jumps; past the chain's end it appends
      const position = op === '-I' && /^\d+$/.test(rest[0] ?? '') ? rest.shift()! : undefined
      const check = shjoin(['iptables', '-w', '-t', table, '-C', chain!, ...rest])
      const add =
        op === '-A'
          ? shjoin(['iptables', '-w', '-t', table, '-A', chain!, ...rest])
          : `${shjoin(['iptables', '-w', '-t', table, '-I', chain!, ...(position ? [position] : []), ...rest])} 2>/dev/null || ${shjoin(['iptables', '-w', '-t', table, '-A', chain!, ...rest])}`
      s.raw(`${check} 2>/dev/null || { ${add}; }`)
    }
  }
  s.cmd('iptables-restore', '-w', '--noflush', rulesFile)
  return own
}

/** Resync one node's kube-proxy rules from the plan's Services, in the lab's proxy mode. */
export async function syncKubeProxy(
  plan: LabPlan,
  node: LabNode,
  mode: Exclude<ProxyMode, 'none'>,
): Promise<KubeProxySync> {
  const services = plan.services ?? []
  const dir = path.join(node.dir, 'agents')
  await mkdir(dir, {recursive: true})
  const s = new NsScript()
  if (mode === 'iptables') {
    const full = kubeProxyIptables(plan, node, services)
    const rulesFile = path.join(dir, 'kube-proxy-sync.rules')
    await writeFile(rulesFile, iptablesSync(s, full, rulesFile).toString())
    const keep = full.contents().find((t) => t.table === 'nat')?.chains ?? []
    s.raw(`keep=${shq(` ${keep.join(' ')} `)}`)
    s.raw(
      `for c in $(iptables -w -t nat -S | awk '$1 == "-N" && $2 ~ /${SERVICE_CHAIN.source}/ {print $2}'); do case "$keep" in *" $c "*) ;; *) iptables -w -t nat -F "$c"; iptables -w -t nat -X "$c";; esac; done`,
    )
  } else {
    // add-then-delete: the table goes whatever is left of it, and the new one comes in the same transaction
    const file = path.join(dir, 'kube-proxy-sync.nft')
    await writeFile(
      file,
      `add table ip kube-proxy\ndelete table ip kube-proxy\n${kubeProxyNftables(plan, node, services)}`,
    )
    s.cmd('nft', '-f', file)
  }
  await runScript(node.netns, s, path.join(dir, 'kube-proxy-sync.sh'), `${node.name} kube-proxy sync`)
  const ports = services.flatMap((svc) => svc.ports.map(() => readyAddresses(svc).length))
  return {
    node: node.name,
    mode,
    servicePorts: ports.length,
    endpoints: ports.reduce((a, n) => a + n, 0),
  }
}
