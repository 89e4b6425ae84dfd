import {existsSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

/**
 * The package root (where package.json is), found by walking up from this file:
 * the same answer from src/ under tsx and from dist/src/ after a build.
 */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir)
    if (up === dir) throw new Error('netctl: cannot find its package root')
    dir = up
  }
  return dir
}

/**
 * netctl's modules that run on their own, by path: a process (the flannel-udp forwarder, a lab
 * Service's UDP responder) or a worker thread (a check worker). Each is an entry of the bundle
 * (scripts/bundle.ts), so that the build has it as a file of its own.
 */
export const STANDALONE_MODULES = [
  'src/lab/udp-forwarder.ts',
  'src/lab/responder.ts',
  'src/services/check-worker.ts',
] as const

/**
 * Where a module of STANDALONE_MODULES is for the netctl that runs: the build's file
 * (`dist/src/…/NAME.js`) when `caller` (the import.meta.url of the module asking) is built code,
 * else its source, which Node runs through tsx (`execArgv`; resolved from the checkout, so run it
 * there). Undefined when that file is missing (a checkout that was not built).
 */
export function standaloneModule(
  source: (typeof STANDALONE_MODULES)[number],
  caller: string,
): {file: string; execArgv: string[]; root: string} | undefined {
  const root = packageRoot()
  const built = !path.relative(path.join(root, 'dist'), fileURLToPath(caller)).startsWith('..')
  const file = path.join(root, built ? path.join('dist', source.replace(/\.ts$/, '.js')) : source)
  if (!existsSync(file)) return undefined
  return {file, execArgv: built ? [] : ['--import', 'tsx'], root}
}
