import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {BUNDLE_SOURCES} from '../../scripts/bundle.js'
import type {ExecResult} from '../../src/util/exec.js'
import {netctl, REPO} from './cli.js'

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

/** The sources each file of the bundle holds (scripts/bundle.ts writes it beside the bundle). */
function bundleSources(): Record<string, string[]> {
  return JSON.parse(readFileSync(path.join(REPO, BUNDLE_SOURCES), 'utf8')) as Record<string, string[]>
}

/**
 * What LOADED (resolved URLs) holds, as sources: a file of the bundle stands for the sources bundled
 * into it (netctl's own as `src/…` or `commands/…`, a package's as `node_modules/NAME/…`); a file
 * loaded from node_modules or elsewhere stands for itself.
 */
export function loadedSources(loaded: string[]): string[] {
  const dist = pathToFileURL(path.join(REPO, 'dist')).href + '/'
  const held = bundleSources()
  return loaded.flatMap((url) => (url.startsWith(dist) ? (held[url.slice(dist.length)] ?? [url]) : [url]))
}

/** The packages among LOADED: `ssh2`, `@kubernetes/client-node`, ... (the path after the last node_modules/), bundled or not. */
export function loadedPackages(loaded: string[]): Set<string> {
  const out = new Set<string>()
  for (const source of loadedSources(loaded)) {
    const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(source.slice(source.lastIndexOf('node_modules/')))
    if (m) out.add(m[1]!)
  }
  return out
}
