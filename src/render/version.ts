/**
 * `netctl version` (and `netctl --version`): the release, the snapshot schema it
 * reads and writes, and the runtime, as text and as JSON (schemas/version.schema.json).
 */
import {SNAPSHOT_SCHEMA_VERSION} from '../model/schema-version.js'

export interface VersionInfo {
  version: string
  snapshotSchemaVersion: number
  node: string
  platform: string
  arch: string
}

export function versionInfo(version: string): VersionInfo {
  return {version, snapshotSchemaVersion: SNAPSHOT_SCHEMA_VERSION, node: process.version, platform: process.platform, arch: process.arch}
}

/** The first line is oclif's own `--version` line, unchanged, for scripts that read it. */
export function versionText(v: VersionInfo): string {
  return `netctl/${v.version} ${v.platform}-${v.arch} node-${v.node}\nsnapshot schema ${v.snapshotSchemaVersion}`
}
