/**
 * CNI checks: one network config in the conf dir (the runtime takes the
 * lexically first), and every plugin it names present in the bin dir.
 */
import type {NodeState} from '../../model/node-state.js'
import type {CheckContext} from './context.js'
import {parseJsonObject} from './context.js'
import {type Check, raise, type Raised} from './raise.js'

/** The runtime (libcni) loads *.conf, *.conflist and *.json, sorted by name, and uses the first. */
const CONF = /\.(conf|conflist|json)$/

export function confFiles(state: NodeState): Array<{name: string; content: string}> {
  return (state.cni?.files ?? [])
    .filter((f) => CONF.test(f.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** The plugin objects of a config: a conflist's `plugins`, or a single .conf itself. */
export function pluginsOf(content: string): Array<Record<string, unknown>> | undefined {
  const conf = parseJsonObject(content)
  if (!conf) return undefined
  if (Array.isArray(conf.plugins))
    return conf.plugins.filter((p): p is Record<string, unknown> => p !== null && typeof p === 'object')
  return [conf]
}

/** Every binary a config needs, with the config line that asks for it: each plugin's type and IPAM type, and what flannel delegates to. */
export function binariesOf(plugins: Array<Record<string, unknown>>): Array<{name: string; line: string}> {
  const out = new Map<string, string>()
  const typeOf = (o: unknown): string | undefined =>
    o && typeof o === 'object' && typeof (o as {type?: unknown}).type === 'string'
      ? (o as {type: string}).type
      : undefined
  const need = (name: string, line: string): void => {
    if (!out.has(name)) out.set(name, line)
  }
  for (const p of plugins) {
    const t = typeOf(p)
    if (t) need(t, `"type": "${t}"`)
    const ipam = typeOf(p.ipam)
    if (ipam) need(ipam, `"ipam": {"type": "${ipam}"}`)
    if (t === 'flannel') {
      // flannel hands the pod to its delegate (bridge unless it says otherwise) with host-local IPAM
      const delegate = typeOf(p.delegate)
      need(
        delegate ?? 'bridge',
        delegate ? `"delegate": {"type": "${delegate}"}` : `"type": "flannel" (delegates to bridge)`,
      )
      need('host-local', `"type": "flannel" (its delegate uses host-local IPAM)`)
    }
  }
  return [...out.entries()].map(([name, line]) => ({name, line}))
}

/** The plugin type a config starts with (flannel, calico, ...), as its file says it. */
function mainType(content: string): string | undefined {
  const t = pluginsOf(content)?.[0]?.type
  return typeof t === 'string' ? t : undefined
}

function expectedTypes(ctx: CheckContext): string[] {
  if (ctx.profile.mode === 'canal') return ['calico', 'flannel']
  if (ctx.profile.family === 'flannel') return ['flannel']
  if (ctx.profile.family === 'calico') return ['calico']
  return []
}

export const cniConfigConflict: Check = (ctx) =>
  ctx.collected().flatMap(({node, state}): Raised[] => {
    if (!ctx.ok(state, 'cni-conf')) return []
    const files = confFiles(state)
    if (files.length < 2) return []
    const expected = expectedTypes(ctx)
    const belongs = (f: {content: string}): boolean =>
      expected.length === 0 || expected.includes(mainType(f.content) ?? '')
    const winner = files[0]!
    const remove = belongs(winner) ? (files.find((f) => !belongs(f)) ?? files[1]!) : winner
    const dir = state.cni!.confDir
    return [
      raise('CNI_CONFIG_CONFLICT', {
        node: node.name,
        subject: dir,
        severity: belongs(winner) ? 'warning' : 'error',
        message: `${files.length} network configs in ${dir} on ${node.name}; the runtime uses ${winner.name}${mainType(winner.content) ? ` (${mainType(winner.content)})` : ''}${belongs(winner) ? '' : `, not ${ctx.profile.name}'s`}`,
        evidence: [
          `ls ${dir}`,
          ...files.map((f) => `${f.name}${mainType(f.content) ? `: "type": "${mainType(f.content)}"` : ''}`),
        ],
        vars: {file: `${dir}/${remove.name}`, node: node.name},
      }),
    ]
  })

export const cniPluginMissing: Check = (ctx) =>
  ctx.collected().flatMap(({node, state}): Raised[] => {
    if (!ctx.ok(state, 'cni-conf', 'cni-bin') || !state.cni) return []
    const winner = confFiles(state)[0]
    const plugins = winner ? pluginsOf(winner.content) : undefined
    if (!winner || !plugins) return []
    const have = new Set(state.cni.plugins)
    const file = `${state.cni.confDir}/${winner.name}`
    return binariesOf(plugins)
      .filter((b) => !have.has(b.name))
      .map(({name: plugin, line}) =>
        raise('CNI_PLUGIN_MISSING', {
          node: node.name,
          subject: plugin,
          message: `${winner.name} on ${node.name} needs the CNI plugin ${plugin}, which is not in ${state.cni!.binDir}: no new pod can start there`,
          evidence: [`${winner.name}: ${line}`, `ls ${state.cni!.binDir}`, state.cni!.plugins.join('  ') || '(empty)'],
          vars: {plugin, file},
        }),
      )
  })
