/**
 * `netctl trace --probe` on real labs, as a user runs it: flannel vxlan and
 * Calico vxlan across a router that drops their UDP port (UNDERLAY_DROP, and
 * confirmed on a healthy pair), flannel vxlan across a router whose link to
 * node2's subnet is down; refused on a saved snapshot.
 */
import {describe, expect, it} from 'vitest'

import {netctl} from '../helpers/cli.js'
import {snapshotFixturePath} from '../helpers/fixtures.js'
import {underlayDropCase} from '../helpers/probe-lab.js'

underlayDropCase('pbfv', 'flannel-vxlan', 8472, {routerPortDown: true})
underlayDropCase('pbcv', 'calico-vxlan', 4789)

describe('trace --probe on a saved snapshot', () => {
  it('is refused: a usage error, exit 2, one line', async () => {
    const r = await netctl([
      'trace',
      'pod-node1-1',
      'pod-node2-1',
      '--snapshot',
      snapshotFixturePath('flannel-vxlan-lab'),
      '--probe',
    ])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--probe sends a real packet')
  })
})
