import type {CleanupResult} from '../transport/kube-debug.js'
import {colors, table} from './color.js'

/** `debug cleanup`: what was deleted, what could not be. */
export function debugCleanupText(r: CleanupResult): string {
  const c = colors()
  const where = r.namespace === 'all' ? 'in any namespace' : `in namespace ${r.namespace}`
  if (r.deleted.length === 0 && r.failed.length === 0) return `no leftover debug pods ${where}`
  const out: string[] = []
  if (r.deleted.length > 0) {
    out.push(
      `${c.green('deleted')} ${r.deleted.length} leftover debug pod${r.deleted.length === 1 ? '' : 's'} ${where}`,
      '',
    )
    out.push(
      table(
        ['NAMESPACE', 'POD', 'NODE', 'RUN', 'PHASE', 'CREATED'],
        r.deleted.map((p) => [p.namespace, p.name, p.node, p.runId, p.phase, p.createdAt]),
      ),
    )
  }
  for (const f of r.failed) out.push(c.red(`could not delete ${f.namespace}/${f.name}: ${f.error}`))
  return out.join('\n')
}
