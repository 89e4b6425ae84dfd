import {execFileSync} from 'node:child_process'

import {beforeAll, describe, expect, it} from 'vitest'

import {loadTextLayout, wrapCommand, wrapLine} from '../../src/render/width.js'

describe('wrapping at a width', () => {
  // a command loads the layout libraries for text output (BaseCommand.init); JSON output never does
  beforeAll(() => loadTextLayout())

  it('a line breaks between words, its rest at the hanging indent, never wider than the width', () => {
    const line = `      ${'evidence '.repeat(12).trim()}`
    const out = wrapLine(line, 40, '          ').split('\n')
    expect(out.length).toBeGreaterThan(1)
    for (const l of out) expect(l.length).toBeLessThanOrEqual(40)
    expect(out[0]).toMatch(/^ {6}evidence/)
    for (const l of out.slice(1)) expect(l).toMatch(/^ {10}evidence/)
    expect(out.join(' ').split(/\s+/).filter(Boolean)).toEqual(line.trim().split(' '))
  })

  it('a line that fits, or no width (not a terminal), is left alone', () => {
    expect(wrapLine('  short', 80)).toBe('  short')
    expect(wrapLine('x '.repeat(200), undefined)).toBe('x '.repeat(200))
  })

  it("a command wraps with ' \\\\' outside quotes and still runs as the same command", () => {
    const cmd = `      printf '%s|' one two 'three four five' six seven eight nine ten eleven twelve`
    const out = wrapCommand(cmd, 40)
    const lines = out.split('\n')
    expect(lines.length).toBeGreaterThan(1)
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(40)
    expect(lines.slice(0, -1).every((l) => l.endsWith(' \\'))).toBe(true)
    const run = (s: string) => execFileSync('sh', ['-c', s], {encoding: 'utf8'})
    expect(run(out)).toBe(run(cmd))
    expect(run(out)).toContain('three four five|')
  })

  it('a comment goes on as a comment', () => {
    const out = wrapCommand(`  # ${'why '.repeat(20).trim()}`, 30).split('\n')
    expect(out.length).toBeGreaterThan(1)
    for (const l of out) expect(l).toMatch(/^ {2}# /)
  })
})
