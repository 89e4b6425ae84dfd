import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import type {ExecResult} from '../../src/util/exec.js'
import {netctl} from './cli.js'

const HOOK = path.join(path.dirname(fileURLToPath(import.meta.url)), 'record-imports.mjs')

/** Run the built CLI as a user does, and list every module the process loaded (resolved URLs). */
export async function netctlImports(
  args: string[],
  opts: {env?: NodeJS.ProcessEnv} = {},
): Promise<ExecResult & {loaded: string[]}> {
  const dir = mkdtempSync(path.join(tmpdir(), 'netctl-imports-'))
  const list = path.join(dir, 'loaded.txt')
  try {
    const r = await netctl(args, {env: {...opts.env, NODE_OPTIONS: `--import=${HOOK}`, NETCTL_TEST_IMPORTS: list}})
    return {...r, loaded: readFileSync(list, 'utf8').split('\n').filter(Boolean)}
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

/** The packages among LOADED: `ssh2`, `@kubernetes/client-node`, ... (the path after the last node_modules/). */
export function loadedPackages(loaded: string[]): Set<string> {
  const out = new Set<string>()
  for (const url of loaded) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url.slice(url.lastIndexOf('/node_modules/')))
    if (m) out.add(m[1]!)
  }
  return out
}
