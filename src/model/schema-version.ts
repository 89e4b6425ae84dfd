/**
 * The snapshot format's version, in a module of its own so that `netctl
 * --version` can name it without loading the schema validator.
 */
export const SNAPSHOT_SCHEMA_VERSION = 1
