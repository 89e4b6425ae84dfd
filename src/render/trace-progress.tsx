import {type ProgressHandle, renderCollectProgress} from './collect-progress.js'

/** The collect display, for a trace that learns which nodes it needs as it walks. */
export type TraceProgressHandle = ProgressHandle

/**
 * Live per-node progress while `netctl trace` collects (stderr, TTY only):
 * the same rows as `netctl collect`, starting empty; nodes join (addNodes) as the walk asks for them.
 */
export function renderTraceProgress(title: string, stream: NodeJS.WriteStream = process.stderr): TraceProgressHandle {
  return renderCollectProgress(title, [], stream)
}
