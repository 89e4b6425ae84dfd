/**
 * Build step (`npm run build`, `prepack`): the TypeScript sources bundled by esbuild into dist/,
 * so that a netctl process loads a few files instead of ~440 (its own ~160 modules, @oclif/core's
 * ~65, semver's ~45, yaml's ~70 …): resolving and compiling each was most of start-up (README,
 * Benchmarks). tsc still type-checks (`tsc --noEmit`, in the build script); it no longer emits.
 *
 * Every file something loads by its path stays where tsc put it: each command in
 * dist/commands/ (oclif's manifest names them, and oclif imports only the one that runs), the help
 * class and the hook package.json names, the modules that run on their own (the flannel-udp
 * forwarder, a check worker: src/util/paths.ts STANDALONE_MODULES), the modules bin/run.js answers
 * `--version` with, and dist/src/main.js, oclif's `execute` for
 * bin/run.js. The code they share goes into dist/chunks/, split so that each loads only what it
 * reaches; a dynamic import() stays a chunk of its own, loaded when it runs, as before.
 *
 * Left out of the bundle, loaded from node_modules as before, when they are needed: the big
 * packages netctl imports lazily (ssh2, the Kubernetes client, ws, ink and React, ajv's compiler
 * and the runtime helpers the built validators require), and oclif's plugins (they are packages
 * with manifests of their own, found by oclif through package.json).
 *
 *   node --import tsx scripts/bundle.ts [--no-sourcemap]
 */
import {readdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import {build} from 'esbuild'

import {packageRoot, STANDALONE_MODULES} from '../src/util/paths.js'

/** Loaded from node_modules at run time, and only when their work is asked for. */
export const EXTERNAL = [
  'ssh2',
  'cpu-features',
  '@kubernetes/client-node',
  'ws',
  'ink',
  'react',
  'react/*',
  'ajv',
  'ajv/*',
  '@oclif/plugin-*',
]

/** Beside the bundle, not shipped: the sources in each output file. */
export const BUNDLE_SOURCES = 'dist/bundle.json'

/** The files something loads by path (besides every command), as sources. */
const ENTRIES = [
  ...STANDALONE_MODULES,
  'src/main.ts',
  'src/help.ts',
  'src/hooks/command-not-found.ts',
  'src/services/version.ts',
  'src/render/version.ts',
  // loaded from dist/ by path by a test and a benchmark: test/commands/check.test.ts forces the built
  // check workers on a small file through check.ts; bench/scale.ts's floor reads a file with
  // snapshot-file.ts, and its trace after start-up runs trace.ts's traceSnapshotStream
  'src/services/check.ts',
  'src/model/snapshot-file.ts',
  'src/services/trace.ts',
]

function sources(dir: string): string[] {
  return readdirSync(dir, {withFileTypes: true})
    .flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : [path.join(dir, e.name)]))
    .filter((f) => /\.tsx?$/.test(f) && !f.endsWith('.d.ts'))
}

/** Bundle the sources into dist/ and write BUNDLE_SOURCES. */
async function bundle(sourcemap: boolean): Promise<void> {
  const root = packageRoot()
  const result = await build({
    absWorkingDir: root,
    entryPoints: [...sources(path.join(root, 'commands')).map((f) => path.relative(root, f)), ...ENTRIES],
    outdir: 'dist',
    outbase: '.',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    chunkNames: 'chunks/[name]-[hash]',
    sourcemap,
    external: EXTERNAL,
    // the CommonJS packages bundled (@oclif/core, yaml …) call require() for Node's own modules
    banner: {
      js: "import {createRequire as __netctlRequire} from 'node:module';const require=__netctlRequire(import.meta.url);",
    },
    jsx: 'automatic',
    metafile: true,
    logLevel: 'warning',
  })
  const outputs = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'))
  // which sources each output holds (a package's files as node_modules/NAME/…): what a test of start-up
  // reads to tell which of netctl's modules and which packages a process loaded (test/helpers/imports.ts)
  const held = Object.fromEntries(
    outputs.map((out) => [
      path.relative('dist', out),
      Object.keys(result.metafile.outputs[out]!.inputs).map((input) => {
        const i = input.lastIndexOf('node_modules/')
        return i === -1 ? input : input.slice(i)
      }),
    ]),
  )
  writeFileSync(path.join(root, BUNDLE_SOURCES), `${JSON.stringify(held, null, 1)}\n`)
  console.log(
    `bundled into ${outputs.length} files in dist/ (${outputs.filter((f) => f.includes('/chunks/')).length} shared chunks)`,
  )
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  await bundle(!process.argv.includes('--no-sourcemap'))
