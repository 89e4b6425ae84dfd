import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {type ExecResult, run} from '../../src/util/exec.js'

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const BIN = path.join(REPO, 'bin/run.js')

/** Run the built CLI exactly as a user does: `node bin/run.js ARGS`. */
export function netctl(
  args: string[],
  opts: {env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string} = {},
): Promise<ExecResult> {
  // vitest sets NODE_ENV=test, which would send oclif looking for TypeScript sources; a user's shell has no such thing.
  const {NODE_ENV: _testEnv, ...env} = process.env
  return run(process.execPath, [BIN, ...args], {
    env: {...env, NO_COLOR: '1', ...opts.env},
    timeoutMs: opts.timeoutMs ?? 300_000,
    ...(opts.input === undefined ? {} : {input: opts.input}),
  })
}

/** Run the CLI with --json and parse stdout; fails loudly with stderr when it is not JSON. */
export async function netctlJson<T = any>(
  args: string[],
  opts: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {},
): Promise<{code: number; json: T; stderr: string}> {
  const r = await netctl([...args, '--json'], opts)
  try {
    return {code: r.code, json: JSON.parse(r.stdout) as T, stderr: r.stderr}
  } catch {
    throw new Error(
      `netctl ${args.join(' ')} --json did not print JSON (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
    )
  }
}
