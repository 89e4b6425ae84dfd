import ipaddr from 'ipaddr.js'

import {firstLine} from '../../util/exec.js'
import {shq} from '../../util/shell.js'

/**
 * The read-only questions preflight asks each node, in one round trip: how the
 * kernel routes to every peer (`ip route get`), whether the kernel can make
 * the link kinds the backend needs, and whether the daemons' programs exist.
 */

export interface RouteGet {
  peer: string
  /** the kernel's answer, or why there is none */
  gateway?: string
  dev?: string
  error?: string
}

export interface NodeProbeAnswer {
  routes: RouteGet[]
  /** link kind → yes (built in or loaded), loadable (a module file exists), no */
  kinds: Record<string, 'yes' | 'loadable' | 'no'>
  tools: Record<string, boolean>
}

export const KIND_MODULE: Record<string, string> = {vxlan: 'vxlan', tun: 'tun', ipip: 'ipip'}

export function preflightScript(peers: string[], kinds: string[], tools: string[]): string {
  for (const ip of peers)
    if (!ipaddr.IPv4.isValidFourPartDecimal(ip)) throw new Error(`not an IPv4 address: ${JSON.stringify(ip)}`)
  for (const k of [...kinds, ...tools]) if (!/^[a-z0-9_-]+$/.test(k)) throw new Error(`bad name: ${JSON.stringify(k)}`)
  return `# netctl backend preflight: read-only
PATH=$PATH:/usr/sbin:/sbin:/usr/local/sbin; export PATH
K=/lib/modules/$(uname -r)
for ip in ${peers.map(shq).join(' ')}; do
  printf 'route %s ' "$ip"; ip -j route get "$ip" 2>&1 | tr '\\n' ' '; printf '\\n'
done
kind() {
  _d=no
  if [ -d "/sys/module/$1" ]; then _d=yes
  elif [ "$1" = tun ] && [ -e /sys/class/misc/tun ]; then _d=yes
  elif [ "$1" = ipip ] && [ -e /proc/sys/net/ipv4/conf/tunl0 ]; then _d=yes
  elif [ -r "$K/modules.builtin" ] && grep -q "/$1\\.ko" "$K/modules.builtin"; then _d=yes
  elif [ -r "$K/modules.dep" ] && grep -q "/$1\\.ko" "$K/modules.dep"; then _d=loadable
  fi
  printf 'kind %s %s\\n' "$1" "$_d"
}
for k in ${kinds.join(' ')}; do kind "$k"; done
for t in ${tools.join(' ')}; do if command -v "$t" >/dev/null 2>&1; then printf 'tool %s yes\\n' "$t"; else printf 'tool %s no\\n' "$t"; fi; done
printf 'done\\n'
`
}

export function parsePreflightOutput(text: string): NodeProbeAnswer | undefined {
  const answer: NodeProbeAnswer = {routes: [], kinds: {}, tools: {}}
  let done = false
  for (const line of text.split('\n')) {
    const m = /^(route|kind|tool) (\S+) ?(.*)$/.exec(line)
    if (line === 'done') done = true
    if (!m) continue
    const [, what, name, rest = ''] = m as unknown as [string, string, string, string]
    if (what === 'route') answer.routes.push(routeGet(name, rest.trim()))
    else if (what === 'kind') answer.kinds[name] = rest === 'yes' || rest === 'loadable' ? rest : 'no'
    else answer.tools[name] = rest === 'yes'
  }
  return done ? answer : undefined
}

function routeGet(peer: string, body: string): RouteGet {
  try {
    const [r] = JSON.parse(body) as Array<{gateway?: string; dev?: string}>
    if (!r) return {peer, error: 'no answer'}
    return {peer, ...(r.gateway ? {gateway: r.gateway} : {}), ...(r.dev ? {dev: r.dev} : {})}
  } catch {
    return {peer, error: firstLine(body) || 'no answer'}
  }
}
