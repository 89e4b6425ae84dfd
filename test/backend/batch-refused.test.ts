/**
 * A forced switch runs its add batch with -force and lets exactly the lines
 * the what-if predicts the kernel refuses fail: runBatch reads which line
 * each error belongs to from the kernel's own `Command failed -:N`.
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {batchScript, runBatch} from '../../src/backend/act/batch.js'
import {REPO} from '../helpers/cli.js'

const IP = [
  'addr add 172.31.1.11/24 dev lo',
  'route replace 172.20.2.0/24 via 172.31.1.12 dev lo',
  'route replace 172.20.3.0/24 via 172.31.2.11 dev lo',
  'neigh replace 172.31.1.12 lladdr 02:00:00:00:00:01 dev lo nud permanent',
  'route replace 172.20.4.0/24 via 172.31.2.12 dev lo',
]
const BRIDGE = ['fdb replace 02:00:00:00:00:02 dev lo dst 172.31.1.12 self permanent']
const stderr = readFileSync(path.join(REPO, 'fixtures/backend/ip-batch-force-refused.stderr'), 'utf8')
const node = {
  target: 'netns wf.node1',
  scripts: [] as string[],
  async exec(script: string) {
    this.scripts.push(script)
    return {stdout: '', stderr, code: 1}
  },
  close: async () => {},
}

describe('runBatch with the lines the kernel may refuse', () => {
  it('returns the refused lines with the kernel words when each was predicted', async () => {
    const refused = await runBatch('node1', node, IP, BRIDGE, {refusable: new Set([IP[2]!, IP[4]!, BRIDGE[0]!])})
    expect(refused).toEqual([
      {line: IP[2], error: 'Error: Nexthop has invalid gateway.'},
      {line: IP[4], error: 'Error: Nexthop has invalid gateway.'},
      {line: BRIDGE[0], error: 'Error: FDB add only supported for Ethernet devices.'},
    ])
    // every line runs: the batch is forced
    expect(node.scripts.at(-1)).toBe(batchScript(IP, BRIDGE, true))
  })

  it('throws on a refusal that was not predicted, naming the line', async () => {
    await expect(runBatch('node1', node, IP, BRIDGE, {refusable: new Set([IP[2]!, BRIDGE[0]!])})).rejects.toThrow(
      `netns wf.node1: Error: Nexthop has invalid gateway. (ip -batch: ${IP[4]})`,
    )
    await expect(runBatch('node1', node, IP, BRIDGE, {refusable: new Set([IP[2]!, IP[4]!])})).rejects.toThrow(
      /FDB add only supported for Ethernet devices.*fdb replace/,
    )
  })
})
