import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {UsageError} from '../../src/errors.js'
import {loadSnapshot, parseSnapshot, SNAPSHOT_SCHEMA_VERSION} from '../../src/model/snapshot.js'
import {fixture} from '../helpers/fixtures.js'

// written by `netctl collect --lab ... -o` from 3-node labs
const text = fixture('snapshots', 'flannel-vxlan-lab.json')
const edited = (fn: (s: any) => void): string => {
  const s = JSON.parse(text)
  fn(s)
  return JSON.stringify(s)
}
const errorOf = (t: string): string => {
  try {
    parseSnapshot(t, 'snap.json')
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    expect((error as Error).message.split('\n')).toHaveLength(1)
    return (error as Error).message
  }
  throw new Error('expected the snapshot to be rejected')
}

describe('snapshot', () => {
  it('collected snapshots validate and hold every node', () => {
    for (const file of ['flannel-vxlan-lab.json', 'flannel-host-gw-lab.json']) {
      const s = parseSnapshot(fixture('snapshots', file), file)
      expect(s.schemaVersion).toBe(SNAPSHOT_SCHEMA_VERSION)
      expect(Object.keys(s.nodeStates).sort()).toEqual(s.nodes.map((n) => n.name).sort())
      expect(s.errors).toEqual([])
      expect(s.cluster.source).toBe('lab')
    }
  })

  it.each([
    [
      'a route dst of the wrong type',
      (s: any) => (s.nodeStates.node2.routes[3].dst = 42),
      'snap.json: invalid snapshot: nodeStates.node2.routes[3].dst: must be a string',
    ],
    [
      'a route dst that is not a CIDR',
      (s: any) => (s.nodeStates.node1.routes[0].dst = 'default'),
      'snap.json: invalid snapshot: nodeStates.node1.routes[0].dst: must be a CIDR like 10.244.1.0/24',
    ],
    [
      'a missing schemaVersion',
      (s: any) => delete s.schemaVersion,
      'snap.json: invalid snapshot: schemaVersion: is required',
    ],
    [
      'an older or odd schemaVersion',
      (s: any) => (s.schemaVersion = 0),
      'snap.json: invalid snapshot: schemaVersion: must be 1',
    ],
    [
      'an unknown error code',
      (s: any) => s.errors.push({node: 'node1', code: 'OOPS', message: 'x'}),
      'snap.json: invalid snapshot: errors[0].code: must be one of "NODE_UNREACHABLE", "COLLECTION_PARTIAL"',
    ],
    [
      'a bad timestamp',
      (s: any) => (s.startedAt = 'yesterday'),
      'snap.json: invalid snapshot: startedAt: must be a timestamp like 2024-05-01T12:00:00Z',
    ],
    [
      'a section status nobody knows',
      (s: any) => (s.nodeStates.node3.sections.fdb.status = 'meh'),
      'snap.json: invalid snapshot: nodeStates.node3.sections.fdb.status: must be one of "ok", "absent", "error", "truncated"',
    ],
    [
      'a node listed twice',
      (s: any) => s.nodes.push({...s.nodes[1]}),
      "snap.json: invalid snapshot: nodes[3].name: 'node2' is already nodes[1]",
    ],
    [
      'a node listed twice under a name with a newline',
      (s: any) => s.nodes.push({...s.nodes[0]}, {...s.nodes[0]}) && (s.nodes[3].name = s.nodes[4].name = 'a\nb'),
      "snap.json: invalid snapshot: nodes[4].name: 'a?b' is already nodes[3]",
    ],
    [
      'a hostile key where a node name goes',
      (s: any) => (s.nodeStates['x\n\u001b[31my'] = {bad: true}),
      'snap.json: invalid snapshot: nodeStates["x\\n\\u001b[31my"].node: is required',
    ],
  ])('%s: one line naming the bad path', (_what, change, message) => {
    expect(errorOf(edited(change))).toBe(message)
  })

  it('fields added later within version 1 are accepted', () => {
    expect(() => parseSnapshot(edited((s) => (s.nodeStates.node1.someFutureField = {x: 1})))).not.toThrow()
  })

  it('a newer schemaVersion says so', () => {
    expect(errorOf(edited((s) => (s.schemaVersion = 2)))).toBe(
      'snap.json: snapshot version 2 is newer than this netctl supports (1)',
    )
  })

  it('not JSON, not an object, no such file', async () => {
    expect(errorOf('{"schemaVersion": 1,')).toMatch(/^snap\.json: not a netctl snapshot \(not JSON: /)
    expect(errorOf('[1,2]')).toBe('snap.json: not a netctl snapshot (expected a JSON object)')
    await expect(loadSnapshot('/nonexistent/snap.json')).rejects.toThrow('/nonexistent/snap.json: no such file')
    const dir = mkdtempSync(path.join(tmpdir(), 'col-snap-'))
    writeFileSync(path.join(dir, 's.json'), text)
    try {
      expect((await loadSnapshot(path.join(dir, 's.json'))).cluster.backend).toBe('flannel-vxlan')
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
