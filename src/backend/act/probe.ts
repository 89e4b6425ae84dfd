import {PREFLIGHT_PROBE_TIMEOUT_MS} from '../../defaults.js'
import type {Transport} from '../../transport/types.js'
import {firstLine} from '../../util/exec.js'
import {type NodeProbeAnswer, parsePreflightOutput, preflightScript} from '../plan/preflight-probe.js'

/**
 * Preflight's one round trip to a node: the script plan/preflight-probe.ts
 * writes, sent over the node's transport. A reason instead of an answer when
 * the node cannot answer.
 */
export async function probeNode(
  transport: Transport,
  peers: string[],
  kinds: string[],
  tools: string[],
  timeoutMs = PREFLIGHT_PROBE_TIMEOUT_MS,
): Promise<NodeProbeAnswer | string> {
  try {
    const r = await transport.exec(preflightScript(peers, kinds, tools), {timeoutMs})
    const answer = parsePreflightOutput(r.stdout)
    if (answer) return answer
    return `${transport.target}: preflight did not finish (${r.timedOut ? 'timed out' : firstLine(r.stderr) || `exit ${r.code}`})`
  } catch (error) {
    return `${transport.target}: ${(error as Error).message}`
  } finally {
    await transport.close().catch(() => {})
  }
}
