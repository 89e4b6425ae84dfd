import ipaddr from 'ipaddr.js'

import {POD_PING_TIMEOUT_MS} from '../../defaults.js'
import type {InventoryNode} from '../../model/inventory.js'
import {podNetnsPath, type Snapshot} from '../../model/snapshot.js'
import type {Transport} from '../../transport/types.js'
import {mapLimit} from '../../util/exec.js'
import {shq} from '../../util/shell.js'
import type {ReachabilityCheck} from './daemons.js'

/**
 * Real pings between pods on a cluster netctl does not run itself: on the
 * source pod's node, through the node's transport (a debug pod or SSH),
 * inside that pod's network namespace as the probe found it (the container
 * runtime's netns path), with the node's own `nsenter` and `ping`. One pod
 * per node to one pod on every other node, and a same-node pair; a few
 * tries each, since the first packet may wait for ARP.
 */

interface PingPod {
  node: string
  name: string
  ip: string
  netns?: string
}

/** The pod pairs to ping: the first pod (with a known netns) of each node to the first of every other node, and a same-node pair. */
export function podPairs(snapshot: Snapshot): Array<[PingPod, PingPod]> {
  const byNode = new Map<string, PingPod[]>()
  for (const p of snapshot.pods) {
    const netns = podNetnsPath(snapshot, p)
    if (!ipaddr.IPv4.isValidFourPartDecimal(p.ip)) continue
    byNode.set(p.node, [
      ...(byNode.get(p.node) ?? []),
      {node: p.node, name: `${p.namespace}/${p.name}`, ip: p.ip, ...(netns ? {netns} : {})},
    ])
  }
  const pairs: Array<[PingPod, PingPod]> = []
  for (const [node, pods] of byNode) {
    const src = pods.find((p) => p.netns)
    if (!src) continue
    for (const [other, opods] of byNode) if (other !== node) pairs.push([src, opods[0]!])
    const second = pods.find((p) => p !== src)
    if (second) pairs.push([src, second])
  }
  return pairs
}

/** One exec per source pod: each target's IP and 1 (answered) or 0; NOTOOLS when the node lacks nsenter or ping. */
export function pingScript(netns: string, ips: string[], tries = 3): string {
  for (const ip of ips) if (!ipaddr.IPv4.isValidFourPartDecimal(ip)) throw new Error(`not an IPv4 address: ${ip}`)
  return [
    'PATH=$PATH:/usr/sbin:/sbin:/usr/bin:/bin',
    'command -v nsenter >/dev/null 2>&1 && command -v ping >/dev/null 2>&1 || { echo NOTOOLS; exit 0; }',
    `for ip in ${ips.join(' ')}; do`,
    `  ok=0; i=0; while [ $i -lt ${tries} ]; do i=$((i+1)); if nsenter --net=${shq(netns)} ping -c 1 -W 1 -q "$ip" >/dev/null 2>&1; then ok=1; break; fi; done`,
    '  echo "$ip $ok"',
    'done',
    '',
  ].join('\n')
}

export function podReachability(
  snapshot: Snapshot,
  nodes: InventoryNode[],
  transportFor: (node: InventoryNode) => Transport,
): ReachabilityCheck {
  return {
    async check() {
      const pairs = podPairs(snapshot)
      const bySource = new Map<PingPod, PingPod[]>()
      for (const [a, b] of pairs) bySource.set(a, [...(bySource.get(a) ?? []), b])
      const failed: Array<{from: string; to: string; toIP: string}> = []
      const noTools: string[] = []
      let checked = 0
      await mapLimit([...bySource], 8, async ([src, targets]) => {
        const node = nodes.find((n) => n.name === src.node)
        const answer = node
          ? await transportFor(node)
              .exec(
                pingScript(
                  src.netns!,
                  targets.map((t) => t.ip),
                ),
                {timeoutMs: POD_PING_TIMEOUT_MS},
              )
              .catch(() => undefined)
          : undefined
        if (answer?.stdout.trim() === 'NOTOOLS') return void noTools.push(src.node)
        const ok = new Set(
          (answer?.stdout ?? '')
            .split('\n')
            .filter((l) => l.endsWith(' 1'))
            .map((l) => l.split(' ')[0]),
        )
        for (const t of targets) {
          checked++
          if (!ok.has(t.ip)) failed.push({from: src.name, to: t.name, toIP: t.ip})
        }
      })
      const note =
        noTools.length > 0
          ? `not pinged from ${noTools.sort().join(', ')}: no nsenter or ping on the node`
          : pairs.length === 0
            ? 'no pod pair to ping: no pod whose network namespace the node gave'
            : undefined
      return {pairs: checked, ok: checked - failed.length, failed, ...(note ? {note} : {})}
    },
  }
}
