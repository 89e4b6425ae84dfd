/** `netctl version`'s result (schemas/version.schema.json): the release, the snapshot schema it reads and writes, and the runtime. */
import {SNAPSHOT_SCHEMA_VERSION} from '../model/schema-version.js'

export interface VersionInfo {
  version: string
  snapshotSchemaVersion: number
  node: string
  platform: string
  arch: string
}

export function versionInfo(version: string): VersionInfo {
  return {
    version,
    snapshotSchemaVersion: SNAPSHOT_SCHEMA_VERSION,
    node: process.version,
    platform: process.platform,
    arch: process.arch,
  }
}
