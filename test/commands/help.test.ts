import {Config} from '@oclif/core'
import {describe, expect, it} from 'vitest'

import {netctl, REPO} from '../helpers/cli.js'

describe('--help teaches', () => {
  it('lists the topics at the top level', async () => {
    const r = await netctl(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/lab\s+Build and inspect/)
  })

  it('gives every command a summary, a description, flags with descriptions, and at least one example', async () => {
    const config = await Config.load(REPO)
    // netctl's own commands; help and autocomplete come from oclif plugins, documented upstream
    const ids = config.commands.filter((c) => c.pluginName === 'netctl').map((c) => c.id)
    expect(ids.length).toBeGreaterThanOrEqual(4)
    for (const id of ids) {
      const cmd = config.findCommand(id)!
      expect(cmd.summary, id).toBeTruthy()
      expect(cmd.examples?.length ?? 0, `${id} examples`).toBeGreaterThan(0)
      for (const [name, flag] of Object.entries(cmd.flags))
        expect(flag.description ?? flag.summary, `${id} --${name}`).toBeTruthy()
      const r = await netctl([...id.split(':'), '--help'])
      expect(r.code).toBe(0)
      expect(r.stdout).toContain('EXAMPLES')
      expect(r.stdout).toContain(`netctl ${id.replace(/:/g, ' ')}`)
    }
  })
})
