/**
 * Collection findings: what netctl itself could not read. Analysis goes on
 * without it and says INSUFFICIENT_INFO where the missing state mattered.
 */
import {SECTION_CAUSES, type SectionCause} from '../../model/node-state.js'
import type {CatalogueEntry} from './types.js'

export const COLLECTION: CatalogueEntry[] = [
  {
    code: 'NODE_UNREACHABLE',
    area: 'collection',
    severity: 'error',
    title: 'netctl could not reach the node',
    meaning:
      'The probe never ran on this node: ssh failed or timed out, or the debug pod could not be scheduled or exec into. The rest of the cluster is still analysed, but every hop on this node is unknown, so a trace through it ends in INSUFFICIENT_INFO.',
    symptoms: 'The run reports the node as unreachable and exits 3; traces through it stop there.',
    confirm: ['kubectl get node <node> -o wide', 'ssh <nodeIP> true'],
    fix: [
      '# check the node is Ready and that ssh (keys, ProxyJump, known_hosts) or the debug pod works for it',
      'kubectl describe node <node>',
      '# or reach it the other way (ssh vs a privileged debug pod) and run again',
    ].join('\n'),
    dispositions: ['INSUFFICIENT_INFO'],
    related: ['COLLECTION_PARTIAL'],
  },
  {
    code: 'COLLECTION_PARTIAL',
    area: 'collection',
    severity: 'warning',
    title: 'part of the node state could not be read',
    meaning:
      'The probe ran, but some sections failed: a tool is missing (bridge, nft, iptables-save, birdc), too old for JSON output, or not permitted. Checks that need those sections are skipped on this node, and the evidence lists what failed and why.',
    symptoms: 'Fewer findings than expected for the node; traces through it may end in INSUFFICIENT_INFO.',
    confirm: ['ip -V', 'command -v bridge nft iptables-save birdc ethtool'],
    // the generic fix, for `explain`; a finding gets the fixes of the causes that happened (partialFix)
    fix: [
      '# see why each section failed (the evidence): a tool missing or too old, no root, a timeout, a pod gone',
      'ip -V; id -u',
    ].join('\n'),
    dispositions: ['INSUFFICIENT_INFO'],
    related: ['NODE_UNREACHABLE'],
  },
]

/**
 * The fix for each reason a section fails (model/node-state.ts SectionCause):
 * a COLLECTION_PARTIAL finding says the ones that happened, in this order.
 */
export const PARTIAL_FIXES: Record<SectionCause, string> = {
  truncated: [
    '# the probe was cut short (the node answered too slowly, or the connection dropped): run again, with a longer --timeout for a slow node',
  ].join('\n'),
  timeout: [
    '# a command did not answer in time on the node (birdc on a hung BIRD, iptables waiting for the xtables lock): check the daemon it talks to, then run again',
    'birdc show status',
  ].join('\n'),
  'netns-gone': [
    "# a pod's network namespace was gone when the probe got there (the pod was deleted or restarted after it was listed): run again",
  ].join('\n'),
  runtime: [
    '# the container runtime had no ready sandbox for a pod (or crictl failed): check the pod is running, then run again',
    'crictl pods --state ready',
  ].join('\n'),
  permission: [
    '# the probe was not allowed to read everything: it needs root on the node (log in as root, or use --via debug-pod)',
    'id -u',
  ].join('\n'),
  'missing-tool': [
    '# install the missing tools (iproute2, bridge, nftables, iptables, ethtool, birdc)',
    'command -v ip bridge nft iptables-save ethtool birdc',
  ].join('\n'),
  'tool-too-old': [
    '# a tool is too old for the output netctl reads (ip -j needs iproute2 4.14 or later): update it',
    'ip -V',
  ].join('\n'),
  failed: [
    '# a command failed on the node: run it there by hand (the evidence says which and what it printed) and fix what it reports',
  ].join('\n'),
}

/** The fix for the causes that happened, each once, in PARTIAL_FIXES order; the generic fix when none is known (an older snapshot). */
export function partialFix(causes: Iterable<SectionCause>): string | undefined {
  const seen = new Set(causes)
  const lines = SECTION_CAUSES.filter((c) => seen.has(c)).map((c) => PARTIAL_FIXES[c])
  return lines.length ? lines.join('\n') : undefined
}
