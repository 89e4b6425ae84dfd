/**
 * `netctl explain`: a finding code or a disposition, as text and as JSON
 * (schemas/explain.schema.json), and the --list index of both.
 */

import {
  AREA_TITLES,
  CATALOGUE,
  DISPOSITION_GUIDE,
  type Lookup,
  PLACEHOLDERS,
  placeholdersIn,
} from '../analyze/catalogue/index.js'
import {FINDING_CODES, type Severity} from '../model/finding.js'
import {DISPOSITIONS} from '../model/trace.js'
import type {ExplainAnswer} from '../services/explain.js'
import {colors, table} from './color.js'
import {fillWords, terminalWidth, wrapCommand} from './width.js'

export function explainJson(found: Lookup): object {
  if (found.kind === 'disposition') {
    const g = found.guide
    return {
      kind: 'disposition',
      code: g.disposition,
      summary: g.summary,
      explanation: g.explanation,
      findings: g.findings,
    }
  }
  const e = found.entry
  const used = placeholdersIn([...e.confirm, e.fix].join('\n'))
  return {
    kind: 'finding',
    code: e.code,
    area: e.area,
    severity: e.severity,
    title: e.title,
    meaning: e.meaning,
    symptoms: e.symptoms,
    confirm: e.confirm,
    fix: e.fix,
    placeholders: Object.fromEntries(used.map((p) => [p, PLACEHOLDERS[p]!])),
    dispositions: e.dispositions ?? [],
    related: e.related ?? [],
  }
}

export function explainListJson(): object {
  return {
    codes: FINDING_CODES.map((c) => ({
      code: c,
      area: CATALOGUE[c].area,
      severity: CATALOGUE[c].severity,
      title: CATALOGUE[c].title,
    })),
    dispositions: DISPOSITIONS.map((d) => ({code: d, summary: DISPOSITION_GUIDE[d].summary})),
  }
}

/** Word wrap at the terminal's width (100 columns when not a terminal), every line indented. */
export function wrap(text: string, indent = '  ', width = terminalWidth() ?? 100): string {
  return fillWords(text, Math.max(20, width - indent.length))
    .split('\n')
    .map((l) => indent + l)
    .join('\n')
}

export function severityColor(s: Severity): (text: string) => string {
  const c = colors()
  return s === 'error' ? c.red : s === 'warning' ? c.yellow : c.blue
}

/** Fix or confirm lines, one a line: explanations dim, commands as they are to be typed; a line wider than the terminal continues with ` \\`, so it still pastes as one. */
export function commandLines(lines: string[], indent = '  ', width = terminalWidth()): string {
  const c = colors()
  return lines.map((l) => (l.trimStart().startsWith('#') ? c.dim : c.cyan)(wrapCommand(indent + l, width))).join('\n')
}

export function explainText(found: Lookup): string {
  const c = colors()
  if (found.kind === 'disposition') {
    const g = found.guide
    return [
      `${c.bold(g.disposition)}  trace disposition`,
      g.summary,
      '',
      wrap(g.explanation),
      ...(g.findings.length
        ? ['', `${c.bold('Findings that end a trace here')} (netctl explain CODE)`, wrap(g.findings.join(', '))]
        : []),
    ].join('\n')
  }
  const e = found.entry
  const used = placeholdersIn([...e.confirm, e.fix].join('\n'))
  const width = Math.max(0, ...used.map((p) => p.length + 2))
  const out = [
    `${c.bold(e.code)}  ${severityColor(e.severity)(e.severity)} · ${AREA_TITLES[e.area]}`,
    e.title,
    '',
    c.bold('What it means'),
    wrap(e.meaning),
    '',
    c.bold('Symptoms'),
    wrap(e.symptoms),
    '',
    c.bold('How to confirm'),
    commandLines(e.confirm),
    '',
    c.bold('How to fix'),
    commandLines(e.fix.split('\n')),
  ]
  if (used.length)
    out.push('', c.bold('Placeholders'), ...used.map((p) => `  ${`<${p}>`.padEnd(width)}  ${PLACEHOLDERS[p]}`))
  if (e.dispositions?.length) out.push('', `Ends a trace in: ${e.dispositions.join(', ')}`)
  if (e.related?.length) out.push(`See also: ${e.related.join(', ')}`)
  return out.join('\n')
}

export function explainListText(): string {
  const c = colors()
  return [
    c.bold('Finding codes'),
    table(
      ['CODE', 'AREA', 'SEVERITY', 'TITLE'],
      FINDING_CODES.map((code) => [
        code,
        AREA_TITLES[CATALOGUE[code].area],
        CATALOGUE[code].severity,
        CATALOGUE[code].title,
      ]),
      '  ',
    ),
    '',
    c.bold('Trace dispositions'),
    table(
      ['DISPOSITION', 'SUMMARY'],
      DISPOSITIONS.map((d) => [d, DISPOSITION_GUIDE[d].summary]),
      '  ',
    ),
    '',
    'netctl explain CODE tells what one of them means and how to fix it.',
  ].join('\n')
}

/** explain's answer as text: the list, or the one code. */
export function explainAnswerText(a: ExplainAnswer): string {
  return a.kind === 'list' ? explainListText() : explainText(a.found)
}

/** explain's answer as JSON: the list, or the one code. */
export function explainAnswerJson(a: ExplainAnswer): object {
  return a.kind === 'list' ? explainListJson() : explainJson(a.found)
}
