import {describe, expect, it} from 'vitest'

import {CATALOGUE, DISPOSITION_GUIDE, PLACEHOLDERS, placeholdersIn} from '../../src/analyze/catalogue/index.js'
import {BACKEND_SWITCH_CODES, FINDING_CODES} from '../../src/model/finding.js'
import {DISPOSITIONS} from '../../src/model/trace.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'

// Runs the built CLI (npm run build first), as a user does.
describe('netctl explain', () => {
  const validate = validatorFor('explain')

  it('explains a finding code: meaning, symptoms, how to confirm, how to fix', async () => {
    const r = await netctl(['explain', 'FDB_MISSING'])
    expect(r.code).toBe(0)
    const e = CATALOGUE.FDB_MISSING
    for (const heading of ['What it means', 'Symptoms', 'How to confirm', 'How to fix', 'Placeholders'])
      expect(r.stdout).toContain(heading)
    expect(r.stdout).toMatch(/^FDB_MISSING\s+error · overlay$/m)
    for (const line of [...e.confirm, ...e.fix.split('\n')]) expect(r.stdout).toContain(`  ${line}`)
    expect(r.stdout).toContain('Ends a trace in: FDB_MISS')
  })

  it('takes codes in any case, with - for _', async () => {
    const r = await netctl(['explain', 'rp-filter-asymmetric'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^RP_FILTER_ASYMMETRIC\s/)
    expect(r.stdout).toContain('sysctl -w net/ipv4/conf/<dev>/rp_filter=2')
  })

  it('gives the entry as JSON, as schemas/explain.schema.json says', async () => {
    for (const code of ['VXLAN_PORT_MISMATCH', 'BGP_MESH_TOO_LARGE', 'node_unreachable']) {
      const {code: exit, json} = await netctlJson(['explain', code])
      expect(exit, code).toBe(0)
      expect(validate(json), `${code}: ${describeSchemaError(validate.errors)}`).toBe(true)
      const entry = CATALOGUE[code.toUpperCase() as keyof typeof CATALOGUE]
      expect(json).toMatchObject({
        kind: 'finding',
        code: entry.code,
        area: entry.area,
        severity: entry.severity,
        fix: entry.fix,
      })
      for (const p of Object.keys(json.placeholders))
        expect(`${json.fix}\n${json.confirm.join('\n')}`).toContain(`<${p}>`)
    }
  })

  it('explains the backend-switch codes preflight refuses with, as text and as JSON', async () => {
    expect(BACKEND_SWITCH_CODES).toEqual([
      'BACKEND_FAMILY_CHANGE',
      'KERNEL_MODULE_MISSING',
      'BACKEND_UNSUPPORTED',
      'DAEMON_UNMANAGED',
      'DAEMON_PROGRAM_MISSING',
    ])
    for (const code of BACKEND_SWITCH_CODES) {
      const e = CATALOGUE[code]
      const r = await netctl(['explain', code.toLowerCase()])
      expect(r.code, code).toBe(0)
      expect(r.stdout).toMatch(new RegExp(`^${code}\\s+error · backend switch$`, 'm'))
      for (const text of [e.title, ...e.confirm, ...e.fix.split('\n')]) expect(r.stdout, code).toContain(text)
      for (const p of placeholdersIn([e.fix, ...e.confirm].join('\n')))
        expect(r.stdout, `${code} <${p}>`).toMatch(
          new RegExp(`^  <${p}>\\s+${PLACEHOLDERS[p]!.slice(0, 20).replace(/[()]/g, '\\$&')}`, 'm'),
        )
      const {code: exit, json} = await netctlJson(['explain', code])
      expect(exit, code).toBe(0)
      expect(validate(json), `${code}: ${describeSchemaError(validate.errors)}`).toBe(true)
      expect(json).toMatchObject({
        kind: 'finding',
        code,
        area: 'backend',
        severity: 'error',
        title: e.title,
        meaning: e.meaning,
        confirm: e.confirm,
        fix: e.fix,
      })
    }
  })

  it('explains a disposition, and tells FDB_MISS (disposition) from FDB_MISSING (finding)', async () => {
    const r = await netctl(['explain', 'FDB_MISS'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^FDB_MISS\s+trace disposition$/m)
    expect(r.stdout).toContain(DISPOSITION_GUIDE.FDB_MISS.summary)
    expect(r.stdout).toContain('FDB_MISSING')
    const {json} = await netctlJson(['explain', 'fdb_miss'])
    expect(validate(json), describeSchemaError(validate.errors)).toBe(true)
    expect(json).toMatchObject({kind: 'disposition', code: 'FDB_MISS', findings: DISPOSITION_GUIDE.FDB_MISS.findings})
  })

  it('--list shows every code with area and severity, and every disposition', async () => {
    const r = await netctl(['explain', '--list'])
    expect(r.code).toBe(0)
    for (const code of FINDING_CODES)
      expect(r.stdout).toMatch(new RegExp(`^  ${code}\\s+\\S.*\\s${CATALOGUE[code].severity}\\s`, 'm'))
    for (const d of DISPOSITIONS) expect(r.stdout).toMatch(new RegExp(`^  ${d}\\s`, 'm'))
    const {json} = await netctlJson(['explain', '--list'])
    expect(validate(json), describeSchemaError(validate.errors)).toBe(true)
    expect(json.codes.map((c: {code: string}) => c.code)).toEqual([...FINDING_CODES])
    expect(json.dispositions.map((d: {code: string}) => d.code)).toEqual([...DISPOSITIONS])
  })

  it('refuses an unknown code with a suggestion, exit 2, one line', async () => {
    const r = await netctl(['explain', 'FDB_MISING'])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr.split('\n')[0]).toBe(
      "netctl: unknown code 'FDB_MISING': did you mean FDB_MISSING? (netctl explain --list)",
    )
    const j = await netctlJson(['explain', 'NEIGHBOUR_UNRESOLVED'])
    expect(j.code).toBe(2)
    expect(validatorFor('error')(j.json)).toBe(true)
    expect(j.json.error.message).toContain('did you mean NEIGHBOR_UNRESOLVED?')
  })

  it('is a usage error without a code, and without a suggestion when nothing is close', async () => {
    const none = await netctl(['explain'])
    expect(none.code).toBe(2)
    expect(none.stderr).toContain('--list')
    const far = await netctl(['explain', 'kubernetes-is-down'])
    expect(far.code).toBe(2)
    expect(far.stderr.split('\n')[0]).toBe("netctl: unknown code 'kubernetes-is-down' (netctl explain --list)")
  })
})
