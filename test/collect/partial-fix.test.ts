/**
 * COLLECTION_PARTIAL says the fix of what happened: the probe's section status
 * carries why it failed, and the finding's fix follows from it. Real probe
 * output (fixtures/probe) with one section made to fail the way a node fails.
 */
import {describe, expect, it} from 'vitest'

import {runChecks} from '../../src/analyze/checks/run.js'
import {collectNodes, snapshotOf} from '../../src/collect/collect.js'
import type {Inventory} from '../../src/model/inventory.js'
import {validateSnapshot} from '../../src/model/snapshot.js'
import type {Transport} from '../../src/transport/types.js'
import {fixture} from '../helpers/fixtures.js'

const M = '@@NETCTL-fixture'
const GOOD = fixture('probe', 'calico-bgp-node1.out')
const markerIn = (script: string): string => /^M='?(@@NETCTL-[A-Za-z0-9]+)'?$/m.exec(script)![1]!

/** Replace one section (B ... E, with its stderr block if any) of the recorded output. */
function withSection(output: string, name: string, replacement: string): string {
  const re = new RegExp(
    `${M} B ${name.replace(/\./g, '\\.')}\\n[\\s\\S]*?${M} E ${name.replace(/\./g, '\\.')} \\d+\\n(?:${M} W ${name.replace(/\./g, '\\.')}\\n[\\s\\S]*?${M} Z\\n)?`,
  )
  expect(re.test(output), `section ${name} in the fixture`).toBe(true)
  return output.replace(re, replacement)
}

const failed = (name: string, code: number, stderr = ''): string =>
  `${M} B ${name}\n\n${M} E ${name} ${code}\n${stderr ? `${M} W ${name}\n${stderr}\n${M} Z\n` : ''}`

const inventory: Inventory = {
  apiVersion: 'netctl.dev/v1',
  kind: 'Inventory',
  cluster: {name: 'fake', backend: 'calico-bgp', clusterCIDR: '10.244.0.0/16', source: 'file'},
  nodes: [{name: 'node1', internalIP: '10.0.0.1', podCIDR: '10.244.1.0/24', access: {netns: 'x.node1'}}],
  pods: [{name: 'web', namespace: 'default', node: 'node1', ip: '10.244.1.5', netns: 'tp-gone'}],
}

/** Collect one node that answers `output`, and check the snapshot: the COLLECTION_PARTIAL finding. */
async function partialFinding(output: string): Promise<{fix: string; evidence: string[]}> {
  const node: Transport = {
    target: 'fake node1',
    exec: async (script) => ({stdout: output.replaceAll(M, markerIn(script)), stderr: '', code: 0}),
    close: async () => {},
  }
  const results = await collectNodes([{node: inventory.nodes[0]!, pods: inventory.pods}], {
    transportFactory: () => node,
  })
  const now = new Date().toISOString()
  const snapshot = JSON.parse(
    JSON.stringify(snapshotOf(inventory, results, {startedAt: now, finishedAt: now, version: 'test'})),
  )
  expect(() => validateSnapshot(snapshot)).not.toThrow()
  // the node's own finding (a pod whose netns could not be entered has one more, naming the pod)
  const findings = runChecks(snapshot).filter(
    (f) => f.code === 'COLLECTION_PARTIAL' && f.subject === inventory.nodes[0]!.name,
  )
  expect(findings).toHaveLength(1)
  return findings[0]!
}

const MISSING_TOOLS = /install the missing tools/

describe('the COLLECTION_PARTIAL fix names the cause that happened', () => {
  it('birdc timed out: check BIRD, not "install the missing tools"', async () => {
    const f = await partialFinding(withSection(GOOD, 'bird-protocols', failed('bird-protocols', 124)))
    expect(f.evidence[0]).toMatch(/bird-protocols: timed out/)
    expect(f.fix).toMatch(/did not answer in time/)
    expect(f.fix).toContain('birdc show status')
    expect(f.fix).not.toMatch(MISSING_TOOLS)
  })

  it("a pod's network namespace gone: run again", async () => {
    const f = await partialFinding(
      withSection(
        GOOD,
        'pod.0',
        failed('pod.0', 255, 'Cannot open network namespace "tp-gone": No such file or directory'),
      ),
    )
    expect(f.evidence[0]).toMatch(/pod default\/web netns: Cannot open network namespace/)
    expect(f.fix).toMatch(/network namespace was gone/)
    expect(f.fix).not.toMatch(MISSING_TOOLS)
  })

  it('no root: the probe needs root', async () => {
    const f = await partialFinding(
      withSection(GOOD, 'nftables', failed('nftables', 1, 'Error: Operation not permitted (you must be root)')),
    )
    expect(f.fix).toMatch(/needs root/)
    expect(f.fix).not.toMatch(MISSING_TOOLS)
  })

  it('a tool missing: install it; two causes: both fixes, each once', async () => {
    const one = withSection(GOOD, 'offloads', failed('offloads', 127, 'sh: ethtool: not found'))
    const f = await partialFinding(withSection(one, 'bird-routes', failed('bird-routes', 124)))
    expect(f.fix).toMatch(MISSING_TOOLS)
    expect(f.fix).toMatch(/did not answer in time/)
    expect(f.fix.match(/did not answer in time/g)).toHaveLength(1)
  })

  it('iproute2 too old for -j: update it', async () => {
    const f = await partialFinding(
      withSection(GOOD, 'routes4', failed('routes4', 255, 'Option "-j" is unknown, try "ip -help".')),
    )
    expect(f.fix).toMatch(/too old/)
    expect(f.fix).toContain('ip -V')
  })
})
