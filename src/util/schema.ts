import {readFileSync} from 'node:fs'
import path from 'node:path'

import {Ajv, type ErrorObject, type ValidateFunction} from 'ajv'
import addFormatsModule from 'ajv-formats'

import {packageRoot} from './paths.js'

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv
let ajv: Ajv | undefined
const compiled = new Map<string, ValidateFunction>()

/** A validator for schemas/NAME.schema.json, compiled once. */
export function validatorFor(name: string): ValidateFunction {
  let v = compiled.get(name)
  if (!v) {
    ajv ??= addFormats(new Ajv({allErrors: true, strict: false}))
    const schema = JSON.parse(readFileSync(path.join(packageRoot(), 'schemas', `${name}.schema.json`), 'utf8')) as object
    v = ajv.compile(schema)
    compiled.set(name, v)
  }
  return v
}

/** The first error as one line: where (a JSON pointer) and what. */
export function describeSchemaError(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0]
  if (!e) return 'invalid'
  const where = e.instancePath === '' ? '(top level)' : e.instancePath.replace(/^\//, '').replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.')
  const extra = e.keyword === 'additionalProperties' ? ` '${(e.params as {additionalProperty: string}).additionalProperty}'` : e.keyword === 'enum' ? `: ${(e.params as {allowedValues: unknown[]}).allowedValues.join(', ')}` : ''
  return `${where}: ${e.message ?? 'invalid'}${extra}`
}
