import {readFileSync} from 'node:fs'
import path from 'node:path'

import {type RawSection, type SplitOutput, splitProbeOutput} from '../../src/collect/sections.js'
import {parseSnapshot, type Snapshot} from '../../src/model/snapshot.js'
import {REPO} from './cli.js'

/** A file under fixtures/. */
export function fixture(...parts: string[]): string {
  return readFileSync(path.join(REPO, 'fixtures', ...parts), 'utf8')
}

const snapshotTexts = new Map<string, string>()
const snapshotFile = (name: string): string => (name.endsWith('.json') ? name : `${name}.json`)

/** The path of a recorded snapshot in fixtures/snapshots (NAME or NAME.json), for a command's --snapshot. */
export function snapshotFixturePath(name: string): string {
  return path.join(REPO, 'fixtures', 'snapshots', snapshotFile(name))
}

/**
 * A recorded snapshot from fixtures/snapshots (NAME or NAME.json), validated
 * as --snapshot would: a fresh copy each call (tests change them), the file
 * read once.
 */
export function snapshotFixture(name: string): Snapshot {
  const file = snapshotFile(name)
  if (!snapshotTexts.has(file)) snapshotTexts.set(file, fixture('snapshots', file))
  return parseSnapshot(snapshotTexts.get(file)!, file)
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
