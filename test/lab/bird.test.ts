import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {parseBirdProtocols} from '../../src/collect/parse/bird.js'
import {bgpSession, birdConfig, birdPeers, peerIPFromProtocol, RR_CLUSTER_ID} from '../../src/lab/bird.js'
import {planLab} from '../../src/lab/topology.js'
import type {LabBackendName, LabPlan, LabTopology} from '../../src/lab/types.js'
import {run} from '../../src/util/exec.js'
import {REPO} from '../helpers/cli.js'

const fixture = (name: string): Promise<string> => readFile(path.join(REPO, 'fixtures/bird', name), 'utf8')

function plan(backend: LabBackendName, nodes = 4, topology: LabTopology = 'flat', routeReflectors = 1): LabPlan {
  return planLab(
    {name: 'birdtest', nodes, podsPerNode: 1, backend, topology, routeReflectors, ssh: false},
    '/run/netctl-test-state',
  )
}

describe('the lab reads birdc show protocols (bird2) with the collect parser', () => {
  it('reads the BGP sessions of an established mesh node', async () => {
    const sessions = parseBirdProtocols(await fixture('show-protocols-mesh-established.txt'))
    expect(sessions.map((r) => peerIPFromProtocol(r.name))).toEqual(['172.31.1.12', '172.31.2.11'])
    for (const r of sessions) {
      expect(r.state).toBe('up')
      expect(r.since).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{3}$/)
      expect(bgpSession(r)).toEqual({state: 'Established', detail: ''})
    }
  })

  it('keeps the last error beside the BGP state', async () => {
    const down = parseBirdProtocols(await fixture('show-protocols-mesh-peer-down.txt')).find(
      (r) => r.name === 'Mesh_172_31_2_11',
    )!
    expect(down.state).toBe('start')
    expect(bgpSession(down)).toEqual({state: 'Passive', detail: 'Received: Administrative shutdown'})
    const refused = parseBirdProtocols(await fixture('show-protocols-rr-client-reflector-down.txt')).find(
      (r) => r.name === 'Node_172_31_0_11',
    )!
    expect(bgpSession(refused)).toEqual({state: 'Active', detail: 'Socket: Connection refused'})
  })

  it('reads a protocol that is down, with a date in Since', async () => {
    const bgp = parseBirdProtocols(await fixture('show-protocols-iso-long-time.txt'))[0]!
    expect(bgp.since).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/)
    expect(bgpSession(bgp)).toEqual({state: 'Down', detail: 'Error: No listening socket'})
  })

  it('a session that is down without a word from BIRD has no detail', () => {
    const [bgp] = parseBirdProtocols(
      'Name       Proto      Table      State  Since         Info\nNode_172_31_0_12 BGP        ---        down   08:07:19.000\n',
    )
    expect(bgpSession(bgp!)).toEqual({state: 'Down', detail: ''})
  })

  it('sees a reflector with a session per client, and a client with one per reflector', async () => {
    const reflector = parseBirdProtocols(await fixture('show-protocols-rr-reflector.txt'))
    const client = parseBirdProtocols(await fixture('show-protocols-rr-client.txt'))
    expect(reflector.map((r) => r.name)).toEqual(['Node_172_31_0_12', 'Node_172_31_0_13', 'Node_172_31_0_14'])
    expect(client.map((r) => r.name)).toEqual(['Node_172_31_0_11', 'Node_172_31_0_12'])
  })

  it('refuses output without a protocol table (the lab says BIRD is not answering)', () => {
    expect(() =>
      parseBirdProtocols('Unable to connect to server control socket (/x/bird.ctl): No such file or directory\n'),
    ).toThrow(/not BIRD protocol output/)
  })
})

describe('birdPeers: who peers with whom', () => {
  it('mesh: every other node, one side of each pair listening', () => {
    const p = plan('calico-bgp', 4)
    for (const a of p.nodes) {
      const peers = birdPeers(p, a)
      expect(peers.map((x) => x.node.name).sort()).toEqual(
        p.nodes
          .filter((n) => n !== a)
          .map((n) => n.name)
          .sort(),
      )
      for (const peer of peers) {
        expect(peer.protocol).toBe(`Mesh_${peer.node.ip.replaceAll('.', '_')}`)
        const back = birdPeers(p, peer.node).find((x) => x.node.name === a.name)!
        // exactly one of the two ends connects
        expect(peer.passive).not.toBe(back.passive)
      }
    }
  })

  it('route reflectors: clients peer only with reflectors; a reflector treats only clients as rr clients', () => {
    const p = plan('calico-rr', 5, 'flat', 2)
    const reflectors = p.nodes.filter((n) => n.routeReflector)
    expect(reflectors).toHaveLength(2)
    for (const n of p.nodes) {
      const peers = birdPeers(p, n)
      if (n.routeReflector) {
        expect(peers).toHaveLength(p.nodes.length - 1)
        for (const peer of peers) expect(peer.rrClient).toBe(!peer.node.routeReflector)
      } else {
        expect(peers.map((x) => x.node.name)).toEqual(reflectors.map((r) => r.name))
        expect(peers.every((x) => !x.rrClient && !x.passive)).toBe(true)
      }
    }
  })
})

// BIRD itself is the judge of the configuration: `bird -p` parses it and exits.
const birdInstalled = (await run('bird', ['--version'])).code === 0
if (!birdInstalled) console.log('skipping "bird -p" checks: bird (bird2) is not installed')

describe.skipIf(!birdInstalled)('birdConfig is accepted by bird2', () => {
  let dir = ''
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'netctl-bird-'))
  })
  afterAll(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  for (const [backend, topology] of [
    ['calico-bgp', 'flat'],
    ['calico-rr', 'flat'],
    ['calico-vxlan', 'routed'],
  ] as const) {
    it(`${backend} on ${topology}: every node's config parses, with one BGP protocol per peer`, async () => {
      const p = plan(backend, 4, topology, 1)
      for (const node of p.nodes) {
        const text = birdConfig(p, node)
        const file = path.join(dir, `${backend}-${node.name}.cfg`)
        await writeFile(file, text)
        const r = await run('bird', ['-p', '-c', file])
        expect(r.stderr + r.stdout).toBe('')
        expect(r.code).toBe(0)
        const declared = [...text.matchAll(/^protocol bgp (\S+) from bgp_template/gm)].map((m) => m[1])
        expect(declared).toEqual(birdPeers(p, node).map((x) => x.protocol))
        expect(text).toContain(`router id ${node.ip};`)
        expect(text).toContain(`route ${node.podCIDR} blackhole;`)
        if (backend === 'calico-rr' && node.routeReflector) expect(text).toContain(`rr cluster id ${RR_CLUSTER_ID};`)
      }
    })
  }
})
