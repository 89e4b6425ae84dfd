import {describe, expect, it} from 'vitest'

import {makeFinding} from '../../src/analyze/catalogue/index.js'
import {findingsSummary, findingsText, sortFindings} from '../../src/render/finding.js'

// colors() is plain here: vitest's stdout is not a terminal
const csum = makeFinding('VXLAN_CSUM_OFFLOAD', {
  node: 'node1',
  subject: 'flannel.1',
  message: 'tx-checksum-ip-generic is on',
  evidence: ['tx-checksum-ip-generic: on'],
  vars: {dev: 'flannel.1'},
})
const fdb = makeFinding('FDB_MISSING', {
  node: 'node1',
  subject: 'flannel.1 → node2 (172.31.0.12)',
  message: "no FDB entry for node2's VTEP 0e:91:d2:47:b8:02",
  evidence: ['172.20.2.0 dev flannel.1 lladdr 0e:91:d2:47:b8:02 PERMANENT'],
  vars: {node: 'node1', peer: 'node2', peerIP: '172.31.0.12', vtepMAC: '0e:91:d2:47:b8:02', dev: 'flannel.1'},
})
const mesh = makeFinding('BGP_MESH_TOO_LARGE', {
  subject: 'node-to-node mesh, 140 nodes',
  evidence: [],
  vars: {node: 'node7'},
  severity: 'info',
})

describe('findings as text', () => {
  it('puts errors first, then warnings, then info, keeping order within a severity', () => {
    expect(sortFindings([mesh, csum, fdb]).map((f) => f.code)).toEqual([
      'FDB_MISSING',
      'VXLAN_CSUM_OFFLOAD',
      'BGP_MESH_TOO_LARGE',
    ])
    const text = findingsText([mesh, csum, fdb])
    expect(text.indexOf('FDB_MISSING')).toBeLessThan(text.indexOf('VXLAN_CSUM_OFFLOAD'))
    expect(text.indexOf('VXLAN_CSUM_OFFLOAD')).toBeLessThan(text.indexOf('BGP_MESH_TOO_LARGE'))
  })

  it('indents the evidence and prints the fix as lines to run', () => {
    const lines = findingsText([fdb]).split('\n')
    expect(lines[0]).toBe('error   FDB_MISSING node1: flannel.1 → node2 (172.31.0.12)')
    expect(lines).toContain('      172.20.2.0 dev flannel.1 lladdr 0e:91:d2:47:b8:02 PERMANENT')
    expect(lines).toContain('      bridge fdb replace 0e:91:d2:47:b8:02 dev flannel.1 dst 172.31.0.12 self permanent')
    expect(lines.indexOf('    evidence:')).toBeLessThan(lines.indexOf('    fix:'))
  })

  it('counts by severity', () => {
    expect(findingsSummary([fdb, csum, mesh])).toBe('3 findings: 1 error, 1 warning, 1 info')
    expect(findingsSummary([fdb, fdb])).toBe('2 findings: 2 errors')
    expect(findingsText([])).toBe('no findings')
  })
})
