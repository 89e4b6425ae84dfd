import {readdirSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {
  PRECOMPILED_VALIDATORS,
  precompiledFile,
  SCHEMA_DEFINITIONS,
  SCHEMA_FORMATS,
  schemaCompiler,
  validatorFor,
  validatorForDefinition,
} from '../../src/util/schema.js'
import {REPO} from '../helpers/cli.js'
import {fixture} from '../helpers/fixtures.js'

/**
 * The build compiles every schema into code (scripts/compile-schemas.ts); those
 * validators must judge exactly as ajv compiling the schema file does, errors
 * and all, since the one-line messages are made from the errors.
 */
const SCHEMAS = readdirSync(path.join(REPO, 'schemas'))
  .filter((f) => f.endsWith('.schema.json'))
  .map((f) => f.replace(/\.schema\.json$/, ''))
const schemaOf = (name: string): {$id: string} =>
  JSON.parse(readFileSync(path.join(REPO, 'schemas', `${name}.schema.json`), 'utf8')) as {$id: string}

const snapshot = (): any => JSON.parse(fixture('snapshots', 'flannel-vxlan-lab.json'))
const bad: [string, (s: any) => void][] = [
  ['a valid snapshot', () => {}],
  ['a route dst of the wrong type', (s) => (s.nodeStates.node2.routes[3].dst = 42)],
  ['a route dst that is not a CIDR', (s) => (s.nodeStates.node1.routes[0].dst = 'default')],
  ['a missing schemaVersion', (s) => delete s.schemaVersion],
  ['a bad timestamp', (s) => (s.startedAt = 'yesterday')],
  ['a node IP that is not an IP', (s) => (s.nodes[0].internalIP = '10.0.0.300')],
  ['a required field missing', (s) => delete s.nodes[1].podCIDRs],
  ['a node name that is empty (minLength)', (s) => (s.nodes[2].name = '')],
  ['a section status nobody knows', (s) => (s.nodeStates.node3.sections.fdb.status = 'meh')],
]

describe('precompiled schema validators', () => {
  it('the build wrote one for every schema and definition, and they are the ones in use', () => {
    const names = [...SCHEMAS, ...SCHEMA_DEFINITIONS.map(([name, definition]) => `${name}#${definition}`)]
    expect(readdirSync(path.join(REPO, PRECOMPILED_VALIDATORS)).sort()).toEqual(
      names.map((n) => path.basename(precompiledFile(n))).sort(),
    )
    for (const name of names) {
      const make = createRequire(import.meta.url)(path.join(REPO, precompiledFile(name))) as (
        formats: typeof SCHEMA_FORMATS,
      ) => unknown
      expect(typeof make(SCHEMA_FORMATS), name).toBe('function')
    }
    // a validator compiled at run time carries its schema; the build's are plain code
    expect(validatorFor('snapshot').schema).toBeUndefined()
    expect(validatorForDefinition('snapshot', 'nodeState').schema).toBeUndefined()
    expect(validatorFor('inventory').schema).toBeUndefined()
  })

  it.each(bad)('%s: the same verdict and errors as compiling the schema file', (what, change) => {
    const s = snapshot()
    change(s)
    const built = validatorFor('snapshot')
    const compiled = schemaCompiler().compile(schemaOf('snapshot'))
    expect(compiled(s)).toBe(what === 'a valid snapshot')
    expect(built(s)).toBe(compiled(s))
    expect(built.errors).toEqual(compiled.errors)
    const ajv = schemaCompiler()
    ajv.addSchema(schemaOf('snapshot'))
    const state = ajv.getSchema(`${schemaOf('snapshot').$id}#/definitions/nodeState`)!
    const builtState = validatorForDefinition('snapshot', 'nodeState')
    expect(builtState(s.nodeStates.node1)).toBe(state(s.nodeStates.node1))
    expect(builtState.errors).toEqual(state.errors)
  })
})
