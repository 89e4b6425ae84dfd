import {readFileSync} from 'node:fs'
import path from 'node:path'

import {Ajv, type ErrorObject, type ValidateFunction} from 'ajv'
import addFormatsModule from 'ajv-formats'
import ipaddr from 'ipaddr.js'

import {packageRoot} from './paths.js'
import {printable} from './text.js'

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv
let ajv: Ajv | undefined
const compiled = new Map<string, ValidateFunction>()

/** A CIDR written out in full (10.244.1.0/24, fd00::/64), as the schemas' `cidr` format accepts it. */
export function isCidr(s: string): boolean {
  try {
    const [addr, len] = ipaddr.parseCIDR(s)
    // the address must be written out in full (no "10.1/16" shorthands)
    return (addr.kind() === 'ipv6' || ipaddr.IPv4.isValidFourPartDecimal(s.split('/')[0]!)) && len >= 0
  } catch {
    return false
  }
}

function isIp(s: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(s) || (s.includes(':') && ipaddr.IPv6.isValid(s))
}

/** ajv with the standard formats, plus the networking ones netctl's schemas use. */
function instance(): Ajv {
  if (ajv) return ajv
  ajv = addFormats(new Ajv({allErrors: true, strict: false}))
  ajv.addFormat('cidr', {type: 'string', validate: isCidr})
  ajv.addFormat('ip', {type: 'string', validate: isIp})
  ajv.addFormat('mac', {type: 'string', validate: (s: string) => /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s)})
  return ajv
}

/** A validator for schemas/NAME.schema.json, compiled once. */
export function validatorFor(name: string): ValidateFunction {
  let v = compiled.get(name)
  if (!v) {
    const schema = JSON.parse(readFileSync(path.join(packageRoot(), 'schemas', `${name}.schema.json`), 'utf8')) as object
    v = instance().compile(schema)
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
      return {path: jsonPath(e.instancePath), message: FORMAT_MESSAGES[String(p.format)] ?? `must be a ${String(p.format)}`}
    case 'enum':
      return {path: jsonPath(e.instancePath), message: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`}
    case 'const':
      return {path: jsonPath(e.instancePath), message: `must be ${JSON.stringify(p.allowedValue)}`}
    case 'type':
      return {path: jsonPath(e.instancePath), message: `must be ${/^[aeiou]/.test(String(p.type)) ? 'an' : 'a'} ${String(p.type)}`}
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
  const depth = (e: ErrorObject): number => e.instancePath.split('/').length + (e.keyword === 'required' || e.keyword === 'additionalProperties' ? 1 : 0)
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
