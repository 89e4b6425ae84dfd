import {describe, expect, it} from 'vitest'

import {mapNodeDisjoint} from '../../src/services/probe-matrix.js'

describe('mapNodeDisjoint: probes whose nodes meet never run together', () => {
  it('runs node-disjoint items together up to the limit, the others one after the other, results in order', async () => {
    const items = [
      ['node1', 'node2'],
      ['node3', 'node4'],
      ['node2', 'node3'],
      ['node5', 'node6'],
      ['node1', 'node4'],
    ]
    const running = new Set<number>()
    const overlaps: string[] = []
    let most = 0
    const out = await mapNodeDisjoint(
      items,
      2,
      (nodes) => nodes,
      async (nodes) => {
        const i = items.indexOf(nodes)
        for (const j of running)
          if (items[j]!.some((n) => nodes.includes(n))) overlaps.push(`${items[j]!.join('+')} with ${nodes.join('+')}`)
        running.add(i)
        most = Math.max(most, running.size)
        await new Promise((r) => setTimeout(r, 20))
        running.delete(i)
        return i
      },
    )
    expect(out).toEqual([0, 1, 2, 3, 4])
    expect(overlaps).toEqual([])
    expect(most).toBe(2)
  })

  it('a failing item rejects the whole run', async () => {
    await expect(
      mapNodeDisjoint(
        [['a'], ['b']],
        4,
        (n) => n,
        async (n) => {
          if (n[0] === 'b') throw new Error('node b unreachable')
          return n
        },
      ),
    ).rejects.toThrow('node b unreachable')
  })
})
