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
