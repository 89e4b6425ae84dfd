import type {SectionStatus} from '../model/node-state.js'

/** One probe section as it came back, before its parser ran. */
export interface RawSection {
  name: string
  status: SectionStatus
  /** the command's stdout */
  body: string
  /** exit code of the section's command, when it ended */
  code?: number
  /** stderr of the command, or why the section is absent */
  message?: string
}

export interface SplitOutput {
  /** the probe's first line was seen: this is probe output, not something else */
  started: boolean
  /** the probe's last line was seen: nothing was cut short */
  done: boolean
  /** probe format version the node ran */
  format?: number
  sections: Map<string, RawSection>
}

/**
 * Split probe output into its sections (see probe.ts for the markers). Never
 * throws: lines outside any section are ignored, a section that began but never
 * ended is `truncated` with what it printed so far.
 */
/** Sub-record lines inside a body start with this (NUL never occurs in the text the probe reads). */
const SUB = '\u0000F '

export function splitProbeOutput(stdout: string, marker: string): SplitOutput {
  const out: SplitOutput = {started: false, done: false, sections: new Map()}
  const prefix = `${marker} `
  const stack: Array<{name: string; lines: string[]}> = []
  let stderrOf: {name: string; lines: string[]} | undefined
  const lines = stdout.split('\n')
  // A trailing newline leaves one empty string behind; it is not a line.
  if (lines.at(-1) === '') lines.pop()

  for (const line of lines) {
    if (!line.startsWith(prefix)) {
      if (stderrOf) stderrOf.lines.push(line)
      else stack.at(-1)?.lines.push(line)
      continue
    }
    const [verb = '', name = '', ...rest] = line.slice(prefix.length).split(' ')
    switch (verb) {
      case 'PROBE':
        out.started = true
        out.format = Number(name)
        break
      case 'DONE':
        out.done = true
        break
      case 'B':
        stack.push({name, lines: []})
        break
      case 'E': {
        // Close up to the named section; any inner one still open was cut short.
        const at = stack.map((s) => s.name).lastIndexOf(name)
        if (at < 0) break
        while (stack.length > at + 1) closeTruncated(out, stack.pop()!)
        const sec = stack.pop()!
        const code = Number(rest[0])
        // the probe prints one newline of its own before the end marker
        const body = sec.lines.join('\n')
        out.sections.set(name, {
          name,
          status: code === 0 ? 'ok' : 'error',
          body,
          code: Number.isFinite(code) ? code : undefined,
        })
        break
      }
      case 'W':
        stderrOf = {name, lines: []}
        break
      case 'Z': {
        if (stderrOf) {
          const sec = out.sections.get(stderrOf.name)
          const text = stderrOf.lines.join('\n').trim()
          if (sec && text) sec.message = text
          stderrOf = undefined
        }
        break
      }
      case 'A':
        out.sections.set(name, {name, status: 'absent', body: '', message: rest.join(' ')})
        break
      case 'F':
        // a sub-record marker belongs to the body of the open section
        stack.at(-1)?.lines.push(`${SUB}${line.slice(prefix.length + 2)}`)
        break
      default:
        stack.at(-1)?.lines.push(line)
    }
  }
  while (stack.length > 0) closeTruncated(out, stack.pop()!)
  return out
}

function closeTruncated(out: SplitOutput, sec: {name: string; lines: string[]}): void {
  out.sections.set(sec.name, {
    name: sec.name,
    status: 'truncated',
    body: sec.lines.join('\n'),
    message: 'output ended before the section did',
  })
}

/**
 * A section body with sub-records (the probe's `F name` lines): each name
 * with the text under it.
 */
export function subRecords(body: string): Array<{name: string; text: string}> {
  const records: Array<{name: string; lines: string[]}> = []
  for (const line of body.split('\n')) {
    if (line.startsWith(SUB)) records.push({name: line.slice(SUB.length), lines: []})
    else records.at(-1)?.lines.push(line)
  }
  return records.map((r) => ({name: r.name, text: r.lines.join('\n').replace(/\n$/, '')}))
}
