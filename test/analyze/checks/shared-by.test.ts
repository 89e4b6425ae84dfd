import {describe, expect, it} from 'vitest'

import {holdersOf, sharedBy} from '../../../src/analyze/checks/addressing.js'
import type {SnapshotNode} from '../../../src/model/snapshot.js'
import {seededRandom} from '../../helpers/random.js'

const node = (name: string): SnapshotNode => ({name, internalIP: '10.0.0.1', podCIDRs: [], annotations: {}, labels: {}})

describe('sharedBy: the values several nodes hold, as holdersOf groups them', () => {
  it('random clusters: the same groups, holders and order as holdersOf keeps of its groups of two or more', () => {
    const random = seededRandom(13)
    for (let round = 0; round < 200; round++) {
      const nodes = Array.from({length: 1 + Math.floor(random() * 40)}, (_, i) => node(`n${i}`))
      // few distinct values, some nodes with none: clashes of two, three and more, in any order
      const values = new Map(nodes.map((n) => [n, random() < 0.2 ? undefined : `v${Math.floor(random() * 12)}`]))
      const valueOf = (n: SnapshotNode) => values.get(n)
      const expected = [...holdersOf(nodes, (n) => (valueOf(n) === undefined ? [] : [valueOf(n)!]))].filter(
        ([, holders]) => holders.length > 1,
      )
      expect(sharedBy(nodes, valueOf)).toEqual(expected)
    }
  })

  it('a value first held by a later node than another clash still comes in the order of its first holder', () => {
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(node) as [SnapshotNode, SnapshotNode, SnapshotNode, SnapshotNode]
    const of = new Map([
      [a, 'x'],
      [b, 'y'],
      [c, 'y'],
      [d, 'x'],
    ])
    expect(sharedBy([a, b, c, d], (n) => of.get(n))).toEqual([
      ['x', [a, d]],
      ['y', [b, c]],
    ])
  })
})
