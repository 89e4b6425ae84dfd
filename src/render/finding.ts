/**
 * Findings as text, for trace and sweep output: errors first, each with its
 * evidence as the tools printed it and its fix as lines to run.
 */
import {type Finding, severityRank} from '../model/finding.js'
import {printable} from '../util/text.js'
import {colors} from './color.js'
import {commandLines, severityColor} from './explain.js'
import {terminalWidth, wrapLine} from './width.js'

/** Errors, then warnings, then info; the order within a severity is kept. */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  return findings
    .map((f, i) => ({f, i}))
    .sort((a, b) => severityRank(a.f.severity) - severityRank(b.f.severity) || a.i - b.i)
    .map(({f}) => f)
}

/** "2 findings: 1 error, 1 warning" / "no findings". */
export function findingsSummary(findings: readonly Finding[]): string {
  if (findings.length === 0) return 'no findings'
  const counts = (['error', 'warning', 'info'] as const)
    .map((s) => [s, findings.filter((f) => f.severity === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}${n === 1 || s === 'info' ? '' : 's'}`)
  return `${findings.length} finding${findings.length === 1 ? '' : 's'}: ${counts.join(', ')}`
}

/** One finding, wrapped at the terminal's width: every value in it comes from a cluster, so each is made printable here, where text is made (util/text.ts); evidence continued deeper than its line, fix lines continued with ` \\` so they still paste whole. */
export function findingText(f: Finding, width = terminalWidth()): string {
  const c = colors()
  const head = [
    severityColor(f.severity)(f.severity.padEnd(7)),
    c.bold(f.code),
    f.node ? `${printable(f.node)}:` : '',
    printable(f.subject),
  ]
    .filter(Boolean)
    .join(' ')
  const out = [wrapLine(head, width, '    '), wrapLine(`    ${printable(f.message)}`, width, '    ')]
  if (f.evidence.length)
    out.push('    evidence:', ...f.evidence.map((e) => c.dim(wrapLine(`      ${printable(e)}`, width, '          '))))
  if (f.fix.trim())
    out.push(
      '    fix:',
      commandLines(
        f.fix.split('\n').map((l) => printable(l)),
        '      ',
        width,
      ),
    )
  out.push(c.dim(`    (netctl explain ${f.code})`))
  return out.join('\n')
}

export function findingsText(findings: readonly Finding[]): string {
  if (findings.length === 0) return 'no findings'
  return [...sortFindings(findings).map((f) => findingText(f)), findingsSummary(findings)].join('\n\n')
}
