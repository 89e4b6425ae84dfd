/**
 * The findings catalogue: every finding code and trace disposition with what
 * it means and how to fix it (`netctl explain CODE`), and makeFinding() that
 * checks build findings with. Pure: no I/O.
 */
import {type Finding, FINDING_CODES, type FindingCode, type Severity} from '../../model/finding.js'
import {type Disposition, DISPOSITIONS} from '../../model/trace.js'
import {closest} from '../../util/edit-distance.js'
import {shq} from '../../util/shell.js'
import {printable} from '../../util/text.js'
import {ADDRESSING} from './addressing.js'
import {BACKEND} from './backend.js'
import {BGP} from './bgp.js'
import {CNI_POLICY} from './cni-policy.js'
import {COLLECTION} from './collection.js'
import {DISPOSITION_TEXT} from './dispositions.js'
import {HOST} from './host.js'
import {MTU} from './mtu.js'
import {OVERLAY} from './overlay.js'
import {PROBE} from './probe.js'
import {ROUTING} from './routing.js'
import {SERVICES} from './services.js'
import {type CatalogueEntry, type DispositionGuide, placeholdersIn} from './types.js'

export type {Area, CatalogueEntry, DispositionGuide} from './types.js'
export {AREA_TITLES, AREAS, PLACEHOLDERS, placeholdersIn} from './types.js'

function byCode(entries: CatalogueEntry[]): Record<FindingCode, CatalogueEntry> {
  const map = new Map<string, CatalogueEntry>()
  for (const e of entries) {
    if (map.has(e.code)) throw new Error(`catalogue: ${e.code} is defined twice`)
    map.set(e.code, e)
  }
  const missing = FINDING_CODES.filter((c) => !map.has(c))
  if (missing.length > 0) throw new Error(`catalogue: no entry for ${missing.join(', ')}`)
  // in FINDING_CODES order, so listings follow docs/design.md's table (and netctl's additions after it)
  return Object.fromEntries(FINDING_CODES.map((c) => [c, map.get(c)!])) as Record<FindingCode, CatalogueEntry>
}

/** code → entry, for every code in FINDING_CODES (checked when this module loads). */
export const CATALOGUE: Readonly<Record<FindingCode, CatalogueEntry>> = byCode([
  ...OVERLAY,
  ...MTU,
  ...HOST,
  ...ROUTING,
  ...BGP,
  ...ADDRESSING,
  ...CNI_POLICY,
  ...SERVICES,
  ...PROBE,
  ...COLLECTION,
  ...BACKEND,
])

/** disposition → what it means, and the finding codes whose entries say they end a walk in it. */
export const DISPOSITION_GUIDE: Readonly<Record<Disposition, DispositionGuide>> = Object.fromEntries(
  DISPOSITIONS.map((d) => [
    d,
    {
      disposition: d,
      ...DISPOSITION_TEXT[d],
      findings: FINDING_CODES.filter((c) => CATALOGUE[c].dispositions?.includes(d)),
    },
  ]),
) as Record<Disposition, DispositionGuide>

export function catalogueEntry(code: FindingCode): CatalogueEntry {
  return CATALOGUE[code]
}

export type Lookup = {kind: 'finding'; entry: CatalogueEntry} | {kind: 'disposition'; guide: DispositionGuide}

/** "fdb-missing", " Fdb_Missing " → FDB_MISSING: what a user types, as codes are spelt. */
function normalise(text: string): string {
  return text
    .trim()
    .toUpperCase()
    .replace(/[-\s]+/g, '_')
}

/** A finding code or a disposition, case-insensitive; undefined when it is neither. */
export function lookupCode(text: string): Lookup | undefined {
  const key = normalise(text)
  if ((FINDING_CODES as readonly string[]).includes(key)) return {kind: 'finding', entry: CATALOGUE[key as FindingCode]}
  if ((DISPOSITIONS as readonly string[]).includes(key))
    return {kind: 'disposition', guide: DISPOSITION_GUIDE[key as Disposition]}
  return undefined
}

/** The code or disposition closest to a mistyped one, if any is plausibly meant. */
export function suggestCode(text: string): string | undefined {
  return closest(normalise(text), [...FINDING_CODES, ...DISPOSITIONS])
}

export type FixVars = Record<string, string | number>

/**
 * Fill a template's <placeholders>: shell-quoted on command lines, as-is on
 * `#` lines. Control characters become '?' so a value can never start a new
 * line (a comment line must not turn into a command). A placeholder without a
 * value is a bug in the check that asked, so it throws.
 */
export function fillTemplate(template: string, vars: FixVars, what = 'template'): string {
  return template
    .split('\n')
    .map((line) => {
      const comment = line.trimStart().startsWith('#')
      return line.replace(/<([A-Za-z][A-Za-z0-9]*)>/g, (_m, name: string) => {
        const value = vars[name]
        if (value === undefined) throw new Error(`${what}: no value for <${name}>`)
        const safe = printable(value)
        return comment ? safe : shq(safe)
      })
    })
    .join('\n')
}

export interface FindingInput {
  node?: string
  subject: string
  /** defaults to the entry's title; say what is wrong here with the concrete values */
  message?: string
  evidence: string[]
  /** one value per placeholder in the entry's fix */
  vars: FixVars
  /** when the check knows better than the entry's default */
  severity?: Severity
}

export function makeFinding(code: FindingCode, input: FindingInput): Finding {
  const entry = CATALOGUE[code]
  return {
    code,
    severity: input.severity ?? entry.severity,
    ...(input.node === undefined ? {} : {node: input.node}),
    subject: input.subject,
    message: input.message ?? entry.title,
    evidence: [...input.evidence],
    fix: fillTemplate(entry.fix, input.vars, `makeFinding(${code})`),
  }
}

/** The placeholders a check must give values for when it raises `code`. */
export function fixVarsOf(code: FindingCode): string[] {
  return placeholdersIn(CATALOGUE[code].fix)
}
