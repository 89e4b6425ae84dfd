import {readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {
  AREA_TITLES,
  AREAS,
  CATALOGUE,
  DISPOSITION_GUIDE,
  fillTemplate,
  fixVarsOf,
  lookupCode,
  makeFinding,
  PLACEHOLDERS,
  placeholdersIn,
  suggestCode,
} from '../../src/analyze/catalogue/index.js'
import {PREFLIGHT_CODES} from '../../src/backend/plan/preflight.js'
import {FINDING_CODES, type FindingCode} from '../../src/model/finding.js'
import {DISPOSITIONS} from '../../src/model/trace.js'
import {REPO} from '../helpers/cli.js'

/** `| area | `CODE`, `CODE` |` rows → [area, codes]. */
function tableRows(lines: string[]): Array<[string, string[]]> {
  return lines
    .filter((l) => l.startsWith('|') && l.includes('`'))
    .map((l) => {
      const [, area = '', codes = ''] = l.split('|').map((c) => c.trim())
      return [area, [...codes.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1]!)]
    })
}

function designSection(text: string): string[] {
  const lines = text.split('\n')
  const start = lines.findIndex((l) => l.startsWith('## Findings catalogue'))
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '))
  return lines.slice(start, end)
}

const designPath = path.join(REPO, 'docs/design.md')
const fixtureRows = tableRows(readFileSync(path.join(REPO, 'fixtures/design-codes.txt'), 'utf8').split('\n'))
const designRows = tableRows(designSection(readFileSync(designPath, 'utf8')))
const everyFillable = (code: FindingCode) => Object.fromEntries(fixVarsOf(code).map((p) => [p, `v-${p}`]))

describe('the catalogue covers docs/design.md', () => {
  it('has every code of the findings table, in its area', () => {
    expect(designRows.length).toBe(8)
    for (const [area, codes] of designRows) {
      expect(codes.length, area).toBeGreaterThan(0)
      for (const code of codes) {
        expect(FINDING_CODES, code).toContain(code)
        const entry = CATALOGUE[code as FindingCode]
        expect(entry?.code, code).toBe(code)
        expect(AREA_TITLES[entry.area], code).toBe(area)
      }
    }
  })

  it('keeps fixtures/design-codes.txt equal to the table in docs/design.md', () => {
    expect(fixtureRows).toEqual(designRows)
  })

  it('has an entry, complete and tight, for every code', () => {
    for (const code of FINDING_CODES) {
      const e = CATALOGUE[code]
      expect(e.code).toBe(code)
      for (const field of [e.title, e.meaning, e.symptoms, e.fix]) expect(field.trim(), code).not.toBe('')
      expect(e.confirm.length, `${code} confirm`).toBeGreaterThanOrEqual(1)
      expect(e.confirm.length, `${code} confirm`).toBeLessThanOrEqual(3)
      for (const c of e.confirm) expect(c.trim().startsWith('#'), `${code} confirm is commands: ${c}`).toBe(false)
      expect(e.fix.split('\n').length, `${code} fix`).toBeLessThanOrEqual(4)
      for (const r of e.related ?? []) expect(FINDING_CODES, `${code} related`).toContain(r)
    }
  })
})

/** Every enum in a schema (at any depth) that holds finding codes, by the one code all such lists have. */
function codeEnums(node: unknown, at = '#'): Array<[string, unknown[]]> {
  if (Array.isArray(node)) return node.flatMap((x, i) => codeEnums(x, `${at}/${i}`))
  if (node === null || typeof node !== 'object') return []
  return Object.entries(node).flatMap(([k, v]): Array<[string, unknown[]]> =>
    k === 'enum' && Array.isArray(v) && v.includes('HOSTGW_NOT_L2_ADJACENT')
      ? [[`${at}/enum`, v]]
      : codeEnums(v, `${at}/${k}`),
  )
}

describe('beyond docs/design.md: the backend-switch codes', () => {
  it("has every code backend preflight can raise, the switch's own in the backend area", () => {
    const designed = new Set(designRows.flatMap(([, codes]) => codes))
    for (const code of PREFLIGHT_CODES) {
      expect(CATALOGUE[code]?.code, code).toBe(code)
      if (!designed.has(code)) expect(CATALOGUE[code].area, code).toBe('backend')
    }
    expect(FINDING_CODES.filter((c) => CATALOGUE[c].area === 'backend')).toEqual(
      PREFLIGHT_CODES.filter((c) => !designed.has(c)),
    )
    expect(AREA_TITLES.backend).toBe('backend switch')
  })

  it("every schema that lists finding codes lists exactly these, and explain's areas are these", () => {
    const files = readdirSync(path.join(REPO, 'schemas')).filter((f) => f.endsWith('.schema.json'))
    const lists = files.flatMap((f) =>
      codeEnums(JSON.parse(readFileSync(path.join(REPO, 'schemas', f), 'utf8'))).map(
        ([at, codes]) => [f, at, codes] as const,
      ),
    )
    expect(new Set(lists.map(([f]) => f))).toEqual(
      new Set([
        'finding.schema.json',
        'explain.schema.json',
        'check.schema.json',
        'trace.schema.json',
        'backend-plan.schema.json',
        'backend-set.schema.json',
      ]),
    )
    for (const [f, at, codes] of lists) expect(codes, `${f} ${at}`).toEqual([...FINDING_CODES])
    const explain = JSON.parse(readFileSync(path.join(REPO, 'schemas/explain.schema.json'), 'utf8'))
    expect(explain.definitions.finding.properties.area.enum).toEqual([...AREAS])
    expect(explain.definitions.list.properties.codes.items.properties.area.enum).toEqual([...AREAS])
  })
})

describe('fix and confirm templates', () => {
  it('use only documented placeholders', () => {
    for (const code of FINDING_CODES) {
      const e = CATALOGUE[code]
      for (const p of placeholdersIn([e.fix, ...e.confirm].join('\n')))
        expect(Object.keys(PLACEHOLDERS), `${code} <${p}>`).toContain(p)
    }
  })

  it('never put a placeholder inside quotes on a command line (the value is shell-quoted there)', () => {
    for (const code of FINDING_CODES) {
      const e = CATALOGUE[code]
      for (const line of [...e.fix.split('\n'), ...e.confirm].filter((l) => !l.trimStart().startsWith('#'))) {
        for (const m of line.matchAll(/<[A-Za-z][A-Za-z0-9]*>/g)) {
          const before = line.slice(0, m.index)
          const quotes = (before.match(/'/g)?.length ?? 0) + (before.match(/"/g)?.length ?? 0)
          expect(quotes % 2, `${code}: ${line}`).toBe(0)
        }
      }
    }
  })

  it('are fully filled by makeFinding when every placeholder has a value', () => {
    for (const code of FINDING_CODES) {
      const f = makeFinding(code, {node: 'node1', subject: 's', evidence: ['e'], vars: everyFillable(code)})
      expect(f.fix, code).not.toMatch(/<[A-Za-z][A-Za-z0-9]*>/)
      expect(f.severity).toBe(CATALOGUE[code].severity)
      expect(f.message).toBe(CATALOGUE[code].title)
    }
  })
})

describe('makeFinding', () => {
  const vars = {node: 'node1', peer: 'node2', peerIP: '172.18.0.12', vtepMAC: '5e:3a:9c:00:00:02', dev: 'flannel.1'}

  it('fills the fix with the values of this fault', () => {
    const f = makeFinding('FDB_MISSING', {
      node: 'node1',
      subject: 'flannel.1 → node2 (172.18.0.12)',
      message: 'no FDB entry for 5e:3a:9c:00:00:02 on flannel.1',
      evidence: ['bridge fdb show dev flannel.1: (no entry for 5e:3a:9c:00:00:02)'],
      vars,
    })
    expect(f).toMatchObject({
      code: 'FDB_MISSING',
      severity: 'error',
      node: 'node1',
      message: 'no FDB entry for 5e:3a:9c:00:00:02 on flannel.1',
    })
    expect(f.fix.split('\n')).toContain(
      'bridge fdb replace 5e:3a:9c:00:00:02 dev flannel.1 dst 172.18.0.12 self permanent',
    )
    expect(f.fix).toContain('# add the entry the agent should have programmed for node2 (172.18.0.12)')
  })

  it('shell-quotes values on command lines, keeps them as-is in comments, and never lets one start a line', () => {
    const f = makeFinding('FDB_MISSING', {
      subject: 's',
      evidence: [],
      vars: {...vars, node: "n'1; reboot", peer: 'evil\nrm -rf /'},
    })
    const lines = f.fix.split('\n')
    expect(lines).toHaveLength(CATALOGUE.FDB_MISSING.fix.split('\n').length)
    expect(lines.at(-1)).toContain(`spec.nodeName='n'\\''1; reboot'`)
    expect(lines[0]).toContain('evil?rm -rf /')
    expect(f.node).toBeUndefined()
  })

  it('throws, naming the placeholder, when a value is missing', () => {
    const {vtepMAC: _omitted, ...partial} = vars
    expect(() => makeFinding('FDB_MISSING', {subject: 's', evidence: [], vars: partial})).toThrow(
      /FDB_MISSING.*<vtepMAC>/,
    )
    expect(() => fillTemplate('ip link set <dev> up', {})).toThrow(/<dev>/)
  })

  it('lets a check override the default severity', () => {
    expect(
      makeFinding('ROUTE_STALE', {subject: 's', evidence: [], vars: everyFillable('ROUTE_STALE'), severity: 'error'})
        .severity,
    ).toBe('error')
  })
})

describe('dispositions', () => {
  it('each have a summary, an explanation, and (but DELIVERED) findings that lead there', () => {
    for (const d of DISPOSITIONS) {
      const g = DISPOSITION_GUIDE[d]
      expect(g.disposition).toBe(d)
      expect(g.summary.trim(), d).not.toBe('')
      expect(g.summary, `${d} summary is one line`).not.toContain('\n')
      expect(g.explanation.trim(), d).not.toBe('')
      if (d !== 'DELIVERED') expect(g.findings.length, d).toBeGreaterThan(0)
      for (const c of g.findings) expect(CATALOGUE[c].dispositions).toContain(d)
    }
  })
})

describe('lookupCode and suggestCode', () => {
  it('find finding codes and dispositions whatever the case', () => {
    expect(lookupCode('fdb_missing')).toMatchObject({kind: 'finding', entry: {code: 'FDB_MISSING'}})
    expect(lookupCode('FDB_MISS')).toMatchObject({kind: 'disposition', guide: {disposition: 'FDB_MISS'}})
    expect(lookupCode(' Rp-Filter-Drop ')).toMatchObject({kind: 'disposition', guide: {disposition: 'RP_FILTER_DROP'}})
    expect(lookupCode('FDB_MISSED')).toBeUndefined()
  })

  it('suggest the closest code for a typo', () => {
    expect(suggestCode('fdb_misssing')).toBe('FDB_MISSING')
    expect(suggestCode('BLACKHOLE_ROUT')).toBe('BLACKHOLE_ROUTE')
    expect(suggestCode('NEIGHBOUR_UNRESOLVED')).toBe('NEIGHBOR_UNRESOLVED')
    expect(suggestCode('hello world, nothing like it')).toBeUndefined()
  })
})
