import {readFileSync} from 'node:fs'
import path from 'node:path'

import {type RawSection, splitProbeOutput, type SplitOutput} from '../../src/collect/sections.js'
import {REPO} from './cli.js'

/** A file under fixtures/. */
export function fixture(...parts: string[]): string {
  return readFileSync(path.join(REPO, 'fixtures', ...parts), 'utf8')
}

/** The marker a captured probe output uses (its first line says `MARKER PROBE 1`). */
export function markerOf(output: string): string {
  const m = /^(@@NETCTL-[A-Za-z0-9]+) PROBE /m.exec(output)
  if (!m) throw new Error('not probe output')
  return m[1]!
}

/** A captured probe output from fixtures/probe, split into sections. */
export function probeFixture(name: string): {text: string; marker: string; split: SplitOutput} {
  const text = fixture('probe', name)
  const marker = markerOf(text)
  return {text, marker, split: splitProbeOutput(text, marker)}
}

/** One section's body from a captured probe output. */
export function sectionOf(name: string, section: string): string {
  const s: RawSection | undefined = probeFixture(name).split.sections.get(section)
  if (!s) throw new Error(`${name} has no section ${section}`)
  return s.body
}
