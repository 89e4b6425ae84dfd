import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {Ajv, type ErrorObject, type ValidateFunction} from 'ajv'
import ipaddr from 'ipaddr.js'

/**
 * JSON Schemas live in schemas/ at the top of the package (shipped with it).
 * Validation failures become one line naming the bad field:
 * `nodes[1].podCIDR: must be a CIDR like 10.244.1.0/24`.
 */

let rootCache: string | undefined
/** The netctl package root (where package.json and schemas/ are), from src/util or dist/src/util. */
export function packageRoot(): string {
  if (rootCache) return rootCache
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'schemas'))) return (rootCache = dir)
    dir = path.dirname(dir)
  }
  throw new Error('cannot find the netctl package root (package.json beside schemas/)')
}

export function schemaDir(): string {
  return path.join(packageRoot(), 'schemas')
}

/** netctl's own version, as package.json has it. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as {version: string}).version
}

export function loadSchema(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(schemaDir(), name), 'utf8')) as Record<string, unknown>
}

function isCidr(s: string): boolean {
  try {
    const [addr, len] = ipaddr.parseCIDR(s)
    // the address part must be written the usual way (no "10.1" shorthands)
    return (ipaddr.IPv4.isValidFourPartDecimal(s.split('/')[0]!) || addr.kind() === 'ipv6') && len >= 0
  } catch {
    return false
  }
}

function isIp(s: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(s) || (ipaddr.IPv6.isValid(s) && s.includes(':'))
}

/** What each format means, said the way a person fixing the file needs it. */
const FORMAT_MESSAGES: Record<string, string> = {
  cidr: 'must be a CIDR like 10.244.1.0/24',
  ip: 'must be an IP address like 10.0.0.1',
  mac: 'must be a MAC address like 02:42:ac:11:00:02',
  'date-time': 'must be a timestamp like 2024-05-01T12:00:00Z',
}

let ajv: Ajv | undefined
function instance(): Ajv {
  if (ajv) return ajv
  ajv = new Ajv({allErrors: true, strict: true, allowUnionTypes: true})
  ajv.addFormat('cidr', {type: 'string', validate: isCidr})
  ajv.addFormat('ip', {type: 'string', validate: isIp})
  ajv.addFormat('mac', {type: 'string', validate: (s: string) => /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s)})
  ajv.addFormat('date-time', {type: 'string', validate: (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s) && !Number.isNaN(Date.parse(s))})
  return ajv
}

const compiled = new Map<string, ValidateFunction>()
export function validatorFor(schemaFile: string): ValidateFunction {
  let v = compiled.get(schemaFile)
  if (!v) {
    v = instance().compile(loadSchema(schemaFile))
    compiled.set(schemaFile, v)
  }
  return v
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
 * The one error worth showing: the deepest (most specific) one; a typo'd
 * field next to a missing one becomes a "did you mean" hint.
 */
export function firstSchemaError(errors: ErrorObject[] | null | undefined): string {
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
