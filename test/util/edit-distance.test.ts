import {describe, expect, it} from 'vitest'

import {closest, editDistance} from '../../src/util/edit-distance.js'

describe('editDistance', () => {
  it('counts inserts, deletes and substitutions', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3)
    expect(editDistance('', 'abc')).toBe(3)
    expect(editDistance('abc', '')).toBe(3)
    expect(editDistance('FDB_MISS', 'FDB_MISSING')).toBe(3)
    expect(editDistance('flannel', 'flannel')).toBe(0)
  })

  it('is symmetric', () => {
    for (const [a, b] of [
      ['ROUTE_STALE', 'ROTUE_STAEL'],
      ['tunl0', 'flannel.1'],
      ['a', 'xyz'],
    ] as const)
      expect(editDistance(a, b)).toBe(editDistance(b, a))
  })
})

describe('closest', () => {
  const codes = ['FDB_MISSING', 'FDB_STALE', 'NEIGH_MISSING', 'VXLAN_CSUM_OFFLOAD', 'ROUTE_MISSING']

  it('picks the nearest plausible typo', () => {
    expect(closest('FDB_MISING', codes)).toBe('FDB_MISSING')
    expect(closest('NEIGH_MISSNG', codes)).toBe('NEIGH_MISSING')
  })

  it('falls back to the shortest candidate containing the input', () => {
    expect(closest('CSUM', codes)).toBe('VXLAN_CSUM_OFFLOAD')
  })

  it('suggests nothing for an input far from every candidate', () => {
    expect(closest('KUBERNETES', codes)).toBeUndefined()
    expect(closest('Q', codes)).toBeUndefined()
  })
})
