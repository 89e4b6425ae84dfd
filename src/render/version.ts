/**
 * `netctl version` (and `netctl --version`): the release, the snapshot schema it
 * reads and writes, and the runtime, as text and as JSON (schemas/version.schema.json).
 */
import type {VersionInfo} from '../services/version.js'

/** The first line is oclif's own `--version` line, unchanged, for scripts that read it. */
export function versionText(v: VersionInfo): string {
  return `netctl/${v.version} ${v.platform}-${v.arch} node-${v.node}\nsnapshot schema ${v.snapshotSchemaVersion}`
}
