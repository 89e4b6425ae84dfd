import {afterEach, describe, expect, it} from 'vitest'

import {validateLabName} from '../../src/lab/topology.js'
import {uniqueLabName} from './lab.js'

describe('uniqueLabName: a developer prefix never costs a test its unique, valid name', () => {
  const saved = process.env.NETCTL_TEST_LAB_PREFIX
  afterEach(() => {
    if (saved === undefined) delete process.env.NETCTL_TEST_LAB_PREFIX
    else process.env.NETCTL_TEST_LAB_PREFIX = saved
  })

  it('keeps within the length a command needs, prefix first, and stays a valid lab name', () => {
    process.env.NETCTL_TEST_LAB_PREFIX = 's11t-'
    // lab bench makes NAME-f-host-gw: NAME may take 14 of a lab name's 24 characters
    const name = uniqueLabName('bnc', 14)
    expect(name.length).toBeLessThanOrEqual(14)
    expect(name.startsWith('s11t-')).toBe(true)
    expect(() => validateLabName(`${name}-f-host-gw`)).not.toThrow()
  })

  it('names taken one after another in a file differ, however long the prefix', () => {
    process.env.NETCTL_TEST_LAB_PREFIX = 'developer-one-'
    const names = Array.from({length: 20}, () => uniqueLabName('safety'))
    expect(new Set(names).size).toBe(names.length)
    for (const n of names) {
      expect(n.startsWith('developer-one-')).toBe(true)
      expect(() => validateLabName(n)).not.toThrow()
    }
  })

  it('refuses a prefix that leaves no room for the unique part, in one line', () => {
    process.env.NETCTL_TEST_LAB_PREFIX = 'a-prefix-far-too-long-'
    expect(() => uniqueLabName('x')).toThrow(/leaves no room for a unique lab name of 24 characters/)
  })
})
