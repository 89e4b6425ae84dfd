import {existsSync, readFileSync, statSync} from 'node:fs'
import {createRequire} from 'node:module'
import path from 'node:path'

import type {Ajv, CodeOptions, ErrorObject, ValidateFunction} from 'ajv'
import {fullFormats} from 'ajv-formats/dist/formats.js'
import ipaddr from 'ipaddr.js'

import {plainIPv4} from './dotted-quad.js'
import {remembered} from './memo.js'
import {packageRoot} from './paths.js'
import {printable} from './text.js'

const require = createRequire(import.meta.url)
const compiled = new Map<string, ValidateFunction>()

/** A CIDR written out in full (10.244.1.0/24, fd00::/64), as the schemas' `cidr` format accepts it. */
export function isCidr(s: string): boolean {
  // the common case without ipaddr's parsers (which throw and catch per try): a snapshot holds millions
  const plain = plainIPv4(s, true)
  if (plain !== -1) return plain === 1
  return s.includes(':') ? remembered(judgedCidrs, s, JUDGED_MAX, cidrOther) : cidrOther(s)
}

/**
 * The same few IPv6 texts come in every node's state (fe80::/64, ff00::/8, ::1/128), each costing
 * ipaddr several microseconds: judged once (the memory bounded: cleared when full).
 */
const judgedCidrs = new Map<string, boolean>()
const judgedIPs = new Map<string, boolean>()
const JUDGED_MAX = 4096

function cidrOther(s: string): boolean {
  try {
    const [addr, len] = ipaddr.parseCIDR(s)
    // the address must be written out in full (no "10.1/16" shorthands)
    return (addr.kind() === 'ipv6' || ipaddr.IPv4.isValidFourPartDecimal(s.split('/')[0]!)) && len >= 0
  } catch {
    return false
  }
}

function isIp(s: string): boolean {
  const plain = plainIPv4(s, false)
  if (plain !== -1) return plain === 1
  // an IPv6 address (every link's fe80::) straight to its parser: the IPv4 one throws and catches on it
  if (s.includes(':')) return remembered(judgedIPs, s, JUDGED_MAX, (x) => ipaddr.IPv6.isValid(x))
  return ipaddr.IPv4.isValidFourPartDecimal(s)
}

/** aa:bb:cc:dd:ee:ff, either case: what /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/ accepts, read character by character (a node holds a neighbour and an FDB entry per peer) */
export function isMac(s: string): boolean {
  if (s.length !== 17) return false
  for (let i = 0; i < 17; i++) {
    const c = s.charCodeAt(i)
    if (i % 3 === 2) {
      if (c !== 58) return false
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70))) return false
  }
  return true
}

/** The formats netctl's schemas use: the standard ones, plus the networking ones. Precompiled validators take them as their one argument. */
export const SCHEMA_FORMATS = {
  ...fullFormats,
  cidr: {type: 'string', validate: isCidr},
  ip: {type: 'string', validate: isIp},
  mac: {type: 'string', validate: isMac},
} as const

/** Definitions that are validated on their own (a version 2 snapshot's node state, read a node at a time). */
export const SCHEMA_DEFINITIONS: readonly (readonly [schema: string, definition: string])[] = [
  ['snapshot', 'nodeState'],
]

/** Where `npm run build` writes every schema's validator as code, one file each (scripts/compile-schemas.ts). */
export const PRECOMPILED_VALIDATORS = 'dist/validators'

/** The build's file for KEY (a schema name, or NAME#definition), relative to the package root. */
export function precompiledFile(key: string): string {
  return `${PRECOMPILED_VALIDATORS}/${key.replace('#', '.')}.cjs`
}

/**
 * ajv, for compiling schemas: by the build, and by a checkout that was not built
 * or whose schemas changed since. The built CLI never loads it (its compiler is
 * 100-150 ms of every start).
 */
export function schemaCompiler(code?: CodeOptions): Ajv {
  const {Ajv: AjvClass} = require('ajv') as typeof import('ajv')
  return new AjvClass({allErrors: true, strict: false, formats: SCHEMA_FORMATS, ...(code ? {code} : {})})
}

let ajv: Ajv | undefined

function schemaFile(name: string): string {
  return path.join(packageRoot(), 'schemas', `${name}.schema.json`)
}

/** The build's validator for KEY (a schema name, or NAME#definition), unless the schema file is newer than the build. */
function fromBuild(key: string, name: string): ValidateFunction | undefined {
  const file = path.join(packageRoot(), precompiledFile(key))
  if (!existsSync(file)) return undefined
  // a schema edited after the build (a developer's checkout): compile the file as it is now
  if (statSync(schemaFile(name)).mtimeMs > statSync(file).mtimeMs) return undefined
  return (require(file) as (formats: typeof SCHEMA_FORMATS) => ValidateFunction)(SCHEMA_FORMATS)
}

/** A validator for schemas/NAME.schema.json: the build's, else compiled once. */
export function validatorFor(name: string): ValidateFunction {
  let v = compiled.get(name)
  if (!v) {
    v = fromBuild(name, name) ?? compileSchema(name)
    compiled.set(name, v)
  }
  return v
}

function compileSchema(name: string): ValidateFunction {
  ajv ??= schemaCompiler()
  const schema = JSON.parse(readFileSync(schemaFile(name), 'utf8')) as {$id?: string}
  return (schema.$id === undefined ? undefined : ajv.getSchema(schema.$id)) ?? ajv.compile(schema)
}

/** A validator for one definition of schemas/NAME.schema.json (a snapshot's node state, read a node at a time). */
export function validatorForDefinition(name: string, definition: string): ValidateFunction {
  const key = `${name}#${definition}`
  let v = compiled.get(key)
  if (!v) {
    v = fromBuild(key, name) ?? compileDefinition(name, definition)
    compiled.set(key, v)
  }
  return v
}

function compileDefinition(name: string, definition: string): ValidateFunction {
  const id = (compileSchema(name).schema as {$id?: string}).$id
  const v = ajv!.getSchema(`${id ?? ''}#/definitions/${definition}`)
  if (!v) throw new Error(`schemas/${name}.schema.json has no definition ${definition}`)
  return v
}

/** The first error as one line: where (a JSON pointer) and what. */
export function describeSchemaError(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0]
  if (!e) return 'invalid'
  const where =
    e.instancePath === ''
      ? '(top level)'
      : e.instancePath
          .replace(/^\//, '')
          .replace(/\/(\d+)/g, '[$1]')
          .replace(/\//g, '.')
  const extra =
    e.keyword === 'additionalProperties'
      ? ` '${(e.params as {additionalProperty: string}).additionalProperty}'`
      : e.keyword === 'enum'
        ? `: ${(e.params as {allowedValues: unknown[]}).allowedValues.join(', ')}`
        : ''
  return `${where}: ${e.message ?? 'invalid'}${extra}`
}

/** What each format means, said the way a person fixing a file needs it. */
const FORMAT_MESSAGES: Record<string, string> = {
  cidr: 'must be a CIDR like 10.244.1.0/24',
  ip: 'must be an IP address like 10.0.0.1',
  ipv4: 'must be an IPv4 address like 10.0.0.1',
  mac: 'must be a MAC address like 02:42:ac:11:00:02',
  'date-time': 'must be a timestamp like 2024-05-01T12:00:00Z',
}

/** `/nodes/1/podCIDR` → `nodes[1].podCIDR` (keys that are not identifiers are quoted). */
export function jsonPath(pointer: string, extra?: string): string {
  const parts = pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
  if (extra !== undefined) parts.push(extra)
  let out = ''
  for (const p of parts) {
    if (/^\d+$/.test(p)) out += `[${p}]`
    else if (/^[A-Za-z_$][\w$-]*$/.test(p)) out += out === '' ? p : `.${p}`
    else out += `[${JSON.stringify(p)}]`
  }
  return out === '' ? '(top level)' : out
}

function describe(e: ErrorObject): {path: string; message: string} {
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'required':
      return {path: jsonPath(e.instancePath, String(p.missingProperty)), message: 'is required'}
    case 'additionalProperties':
      return {path: jsonPath(e.instancePath, String(p.additionalProperty)), message: 'is not a known field'}
    case 'format':
      return {
        path: jsonPath(e.instancePath),
        message: FORMAT_MESSAGES[String(p.format)] ?? `must be a ${String(p.format)}`,
      }
    case 'enum':
      return {
        path: jsonPath(e.instancePath),
        message: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      }
    case 'const':
      return {path: jsonPath(e.instancePath), message: `must be ${JSON.stringify(p.allowedValue)}`}
    case 'type':
      return {
        path: jsonPath(e.instancePath),
        message: `must be ${/^[aeiou]/.test(String(p.type)) ? 'an' : 'a'} ${String(p.type)}`,
      }
    default:
      return {path: jsonPath(e.instancePath), message: e.message ?? 'is invalid'}
  }
}

/**
 * The one error worth showing for a hand-edited file: the deepest (most
 * specific) one, with the field's path; a misspelt field next to a missing one
 * becomes a "did you mean" hint. E.g. `nodes[1].podCIDR: must be a CIDR like 10.244.1.0/24`.
 */
export function firstSchemaError(errors: ErrorObject[] | null | undefined): string {
  // the path holds keys from the file (node names): one line, nothing for a terminal to obey
  return printable(schemaErrorLine(errors))
}

function schemaErrorLine(errors: ErrorObject[] | null | undefined): string {
  if (!errors || errors.length === 0) return 'is invalid'
  const useful = errors.filter((e) => !['anyOf', 'oneOf', 'if', 'allOf'].includes(e.keyword))
  const pool = useful.length > 0 ? useful : errors
  const depth = (e: ErrorObject): number =>
    e.instancePath.split('/').length + (e.keyword === 'required' || e.keyword === 'additionalProperties' ? 1 : 0)
  const best = pool.reduce((a, b) => (depth(b) > depth(a) ? b : a))
  if (best.keyword === 'required') {
    const missing = String((best.params as {missingProperty: string}).missingProperty)
    const typo = pool.find(
      (e) =>
        e.keyword === 'additionalProperties' &&
        e.instancePath === best.instancePath &&
        String((e.params as {additionalProperty: string}).additionalProperty).toLowerCase() === missing.toLowerCase(),
    )
    if (typo) {
      const wrong = String((typo.params as {additionalProperty: string}).additionalProperty)
      return `${jsonPath(best.instancePath, wrong)}: is not a known field (did you mean ${missing}?)`
    }
  }
  const d = describe(best)
  return `${d.path}: ${d.message}`
}
