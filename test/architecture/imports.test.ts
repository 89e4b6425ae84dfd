/**
 * Dependencies point down (docs/architecture.md, "Layers"): a module imports
 * only its own layer and the layers below it. Read from the import
 * statements themselves (static, `export … from`, dynamic `import()`, type
 * imports too), so a new file or folder has to be given a layer here first.
 */
import {readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {describe, expect, it} from 'vitest'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/** Bottom to top; each layer may import itself and those before it. */
const LAYERS: ReadonlyArray<{layer: string; holds: readonly string[]}> = [
  {layer: 'util', holds: ['src/util', 'src/errors.ts', 'src/defaults.ts']},
  {layer: 'model', holds: ['src/model']},
  // the parsers are pure (text in, model out): the lab reads its BIRD with them too
  {layer: 'parse', holds: ['src/collect/parse', 'src/collect/sections.ts']},
  {layer: 'analyze', holds: ['src/analyze']},
  {layer: 'cluster', holds: ['src/cluster']},
  {layer: 'transport', holds: ['src/transport']},
  {layer: 'lab', holds: ['src/lab']},
  {layer: 'collect', holds: ['src/collect']},
  {layer: 'backend', holds: ['src/backend']},
  {layer: 'services', holds: ['src/services']},
  {layer: 'render', holds: ['src/render']},
  {layer: 'cli', holds: ['commands', 'src/hooks', 'src/base-command.ts', 'src/flags.ts', 'src/help.ts', 'src/main.ts']},
]

/** Packages src/analyze must not reach: it is pure (no I/O, no console, no CLI). */
const IMPURE =
  /^(node:(fs|fs\/promises|child_process|net|dgram|os|process|readline|http|https|tls)|@oclif\/|ink|react|ssh2|@kubernetes\/)/

function layerOf(file: string): number | undefined {
  // compiled names (.js) and source names (.ts) are the same module
  const bare = (p: string): string => p.replace(/\.(ts|tsx|js|jsx)$/, '')
  const rel = bare(file.split(path.sep).join('/'))
  const i = LAYERS.findIndex((l) => l.holds.some((h) => rel === bare(h) || rel.startsWith(`${h}/`)))
  return i < 0 ? undefined : i
}

const SPECIFIER =
  /(?:^|[^\w.$])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]|(?:^|[^\w.$])import\s*\(\s*['"]([^'"]+)['"]\s*\)/g

/** Every module specifier a source text imports. */
function importsOf(text: string): string[] {
  const noComments = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  return [...noComments.matchAll(SPECIFIER)].map((m) => (m[1] ?? m[2])!)
}

interface Violation {
  file: string
  imports: string
  why: string
}

/** Imports against the direction, for files given as {path relative to the root: text}. */
function violations(files: ReadonlyMap<string, string>): Violation[] {
  const out: Violation[] = []
  for (const [file, text] of files) {
    const from = layerOf(file)
    if (from === undefined) {
      out.push({
        file,
        imports: '',
        why: 'in no layer: give it one in test/architecture/imports.test.ts and docs/architecture.md',
      })
      continue
    }
    for (const spec of importsOf(text)) {
      if (!spec.startsWith('.')) {
        if (LAYERS[from]!.layer === 'analyze' && IMPURE.test(spec))
          out.push({file, imports: spec, why: 'src/analyze is pure'})
        continue
      }
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec))
      const to = layerOf(target)
      if (to === undefined) out.push({file, imports: spec, why: `${target} is in no layer`})
      else if (to > from)
        out.push({file, imports: spec, why: `${LAYERS[from]!.layer} may not import ${LAYERS[to]!.layer}`})
    }
  }
  return out
}

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), {recursive: true, withFileTypes: true})
    .filter((e) => e.isFile() && /\.tsx?$/.test(e.name))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
}

describe('import direction', () => {
  it('every import in src/ and commands/ points down the layers', () => {
    const files = new Map(
      [...sources('src'), ...sources('commands')].map((f) => [f, readFileSync(path.join(ROOT, f), 'utf8')]),
    )
    expect(files.size).toBeGreaterThan(100)
    expect(violations(files)).toEqual([])
  })

  it('flags an import that points up, one from analyze to I/O, and a file in no layer', () => {
    const files = new Map([
      ['src/model/snapshot.ts', "import type {Inventory} from '../cluster/inventory.js'\n"],
      ['src/lab/list.ts', "const m = await import('../render/lab.js')\n"],
      ['src/analyze/fib.ts', "import {readFileSync} from 'node:fs'\nimport {parseIp} from './ip.js'\n"],
      [
        'src/render/check.ts',
        "export {checkResult} from '../services/check-result.js'\n// import {x} from '../../commands/check.js'\n",
      ],
      ['src/newfolder/x.ts', ''],
    ])
    expect(violations(files)).toEqual([
      {file: 'src/model/snapshot.ts', imports: '../cluster/inventory.js', why: 'model may not import cluster'},
      {file: 'src/lab/list.ts', imports: '../render/lab.js', why: 'lab may not import render'},
      {file: 'src/analyze/fib.ts', imports: 'node:fs', why: 'src/analyze is pure'},
      {
        file: 'src/newfolder/x.ts',
        imports: '',
        why: 'in no layer: give it one in test/architecture/imports.test.ts and docs/architecture.md',
      },
    ])
  })
})
