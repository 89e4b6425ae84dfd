import {describe, expect, it} from 'vitest'

import {collectInventory, collectNodes, type NodeProgress} from '../../src/collect/collect.js'
import type {Inventory, InventoryNode} from '../../src/model/inventory.js'
import {validateSnapshot} from '../../src/model/snapshot.js'
import {createTransport, registerTransport} from '../../src/transport/index.js'
import {NetnsTransport} from '../../src/transport/netns.js'
import {SshTransport} from '../../src/transport/ssh.js'
import {type ExecOptions, type Transport, TransportError, type TransportResult} from '../../src/transport/types.js'
import {fixture} from '../helpers/fixtures.js'

/** The marker the collector put in the script it sent. */
const markerIn = (script: string): string => /^M='?(@@NETCTL-[A-Za-z0-9]+)'?$/m.exec(script)![1]!

/** A node that answers with a recorded probe output, as if it had run the script it was sent. */
class RecordedNode implements Transport {
  readonly target: string
  closed = false
  constructor(
    name: string,
    private readonly output: string,
    private readonly onExec?: () => Promise<void>,
  ) {
    this.target = `fake ${name}`
  }
  async exec(script: string): Promise<TransportResult> {
    await this.onExec?.()
    return {stdout: this.output.replaceAll('@@NETCTL-fixture', markerIn(script)), stderr: '', code: 0}
  }
  async close(): Promise<void> {
    this.closed = true
  }
}

/** Sleeps far past any timeout, ignoring the one it is given; close() hangs too. */
class HangingNode implements Transport {
  readonly target = 'fake hang'
  execCalled = false
  closeCalled = false
  exec(_script: string, _opts?: ExecOptions): Promise<TransportResult> {
    this.execCalled = true
    return new Promise((resolve) => setTimeout(() => resolve({stdout: '', stderr: '', code: 0}), 3_600_000).unref())
  }
  close(): Promise<void> {
    this.closeCalled = true
    return new Promise(() => {})
  }
}

class RefusingNode implements Transport {
  readonly target = 'fake refuse'
  async exec(): Promise<TransportResult> {
    throw new TransportError('connect ECONNREFUSED 10.0.0.13:22', 'refused')
  }
  async close(): Promise<void> {}
}

class GarbageNode implements Transport {
  readonly target = 'fake garbage'
  async exec(): Promise<TransportResult> {
    return {stdout: '\u0000\u0001<html><body>502 Bad Gateway</body></html>\n', stderr: '', code: 0}
  }
  async close(): Promise<void> {}
}

const node = (name: string): InventoryNode => ({
  name,
  internalIP: '10.0.0.1',
  podCIDR: '10.244.1.0/24',
  access: {netns: `x.${name}`},
})
const inventory = (names: string[]): Inventory => ({
  apiVersion: 'netctl.dev/v1',
  kind: 'Inventory',
  cluster: {name: 'fake', backend: 'flannel-vxlan', clusterCIDR: '10.244.0.0/16', source: 'file'},
  nodes: names.map(node),
  pods: [],
})

const GOOD = fixture('probe', 'flannel-vxlan-node1.out')

describe('collecting with dead, slow, refusing and garbage-returning nodes', () => {
  it('records each bad node and still collects the others, in a run that ends', async () => {
    const hang = new HangingNode()
    const good = new RecordedNode('good', GOOD)
    const partial = new RecordedNode('partial', GOOD.replace(/(@@NETCTL-fixture B routes4\n)\[/, '$1{'))
    const transports: Record<string, Transport> = {
      good,
      hang,
      refuse: new RefusingNode(),
      garbage: new GarbageNode(),
      partial,
    }
    const progress: NodeProgress[] = []
    const snapshot = await collectInventory(inventory(Object.keys(transports)), {
      version: 'test',
      timeoutMs: 300,
      parallel: 5,
      transportFactory: (n) => transports[n.name]!,
      onProgress: (p) => progress.push(p),
    })

    expect(Object.keys(snapshot.nodeStates).sort()).toEqual(['good', 'partial'])
    const errors = Object.fromEntries(snapshot.errors.map((e) => [e.node, e]))
    expect(errors.good).toBeUndefined()
    expect(errors.hang).toMatchObject({code: 'NODE_UNREACHABLE', message: 'fake hang: no answer within 0.3s'})
    expect(errors.refuse).toMatchObject({
      code: 'NODE_UNREACHABLE',
      message: 'fake refuse: connect ECONNREFUSED 10.0.0.13:22',
    })
    expect(errors.garbage).toMatchObject({
      code: 'NODE_UNREACHABLE',
      message: expect.stringMatching(/^fake garbage: did not run the probe \(exit code 0: .*502 Bad Gateway/),
    })
    expect(errors.partial).toMatchObject({
      code: 'COLLECTION_PARTIAL',
      message: expect.stringMatching(/^1 section incomplete: routes4: invalid JSON/),
    })
    expect(snapshot.nodeStates.partial!.sections.routes4!.status).toBe('error')
    expect(snapshot.nodeStates.partial!.links.length).toBeGreaterThan(0)
    // the hanging node was asked, and let go of even though its close() never returns
    expect(hang.execCalled && hang.closeCalled).toBe(true)
    expect(good.closed).toBe(true)
    // every node went from waiting to a final phase
    for (const name of Object.keys(transports)) {
      const phases = progress.filter((p) => p.node === name).map((p) => p.phase)
      expect(phases[0]).toBe('waiting')
      expect(['done', 'partial', 'unreachable']).toContain(phases.at(-1))
    }
    // and the whole thing is a valid snapshot
    expect(() => validateSnapshot(JSON.parse(JSON.stringify(snapshot)))).not.toThrow()
  })

  it('a transport that cannot even be made (no ssh transport plugged in) is unreachable', async () => {
    const inv = inventory(['a'])
    inv.nodes[0]!.access = {ssh: {host: 'node-a.example'}}
    const ssh = registerTransport('ssh', undefined)
    try {
      const snapshot = await collectInventory(inv, {version: 'test'})
      expect(snapshot.errors).toEqual([
        {node: 'a', code: 'NODE_UNREACHABLE', message: 'node a: ssh transport not available yet'},
      ])
      expect(snapshot.nodeStates).toEqual({})
    } finally {
      registerTransport('ssh', ssh)
    }
  })

  it('a probe that ran out of time but printed its first sections keeps them (COLLECTION_PARTIAL)', async () => {
    const cut = GOOD.slice(0, GOOD.indexOf('@@NETCTL-fixture B sysctls'))
    const slow: Transport = {
      target: 'fake slow',
      exec: async (script) => ({
        stdout: cut.replaceAll('@@NETCTL-fixture', markerIn(script)),
        stderr: '',
        code: 137,
        timedOut: true,
      }),
      close: async () => {},
    }
    const [r] = await collectNodes([{node: node('slow'), pods: []}], {timeoutMs: 1000, transportFactory: () => slow})
    expect(r!.state!.fdb.length).toBeGreaterThan(0)
    expect(r!.errors).toEqual([
      {
        node: 'slow',
        code: 'COLLECTION_PARTIAL',
        message: expect.stringMatching(/the probe ran past the 1s timeout and was stopped/),
      },
    ])
  })
})

describe('parallelism', () => {
  it('never probes more than --parallel nodes at once, and uses the bound', async () => {
    let running = 0
    let peak = 0
    const gate = async () => {
      running++
      peak = Math.max(peak, running)
      await new Promise((r) => setTimeout(r, 20))
      running--
    }
    const names = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7']
    const results = await collectNodes(
      names.map((n) => ({node: node(n), pods: []})),
      {parallel: 3, transportFactory: (n) => new RecordedNode(n.name, GOOD, gate)},
    )
    expect(peak).toBe(3)
    expect(results.map((r) => r.node)).toEqual(names)
    expect(results.every((r) => r.state && r.errors.length === 0)).toBe(true)
  })
})

describe('transport factory', () => {
  const both: InventoryNode = {...node('c'), access: {netns: 'x.c', ssh: {host: '10.0.0.3', user: 'root', port: 2222}}}

  it('netns for lab nodes, ssh for real ones; a node with both takes netns unless ssh is asked for', () => {
    expect(createTransport(node('a'))).toBeInstanceOf(NetnsTransport)
    expect(createTransport({...node('b'), access: {ssh: {host: 'b'}}})).toBeInstanceOf(SshTransport)
    expect(createTransport(both)).toBeInstanceOf(NetnsTransport)
    expect(createTransport(both, 'ssh')).toBeInstanceOf(SshTransport)
    expect(createTransport(both, 'ssh').target).toBe('ssh 10.0.0.3')
    expect(() => createTransport(node('a'), 'ssh')).toThrow('node a: the inventory gives no access.ssh for it')
  })

  it('a factory can be swapped for another and taken out', () => {
    const fake = new GarbageNode()
    const ssh = registerTransport('ssh', () => fake)
    try {
      expect(createTransport({...node('b'), access: {ssh: {host: 'b'}}})).toBe(fake)
      registerTransport('ssh', undefined)
      expect(() => createTransport({...node('b'), access: {ssh: {host: 'b'}}})).toThrow(TransportError)
    } finally {
      registerTransport('ssh', ssh)
    }
  })

  it('the netns transport refuses names that are not a namespace name, and missing namespaces', async () => {
    await expect(new NetnsTransport('../../proc/1/ns/net').exec('true')).rejects.toThrow(
      'not a valid network namespace name',
    )
    await expect(new NetnsTransport('col-no-such-namespace-here').exec('true')).rejects.toThrow(
      'no such network namespace',
    )
  })
})

describe('streaming each node state as it arrives', () => {
  it('hands every state to the writer before collection ends, and keeps none of them', async () => {
    // 40 nodes, 4 at a time; the last node answers only once the writer holds every other node's
    // state: a collector that wrote only at the end would never get there (structural, not timed)
    const names = Array.from({length: 40}, (_, i) => `n${i + 1}`)
    const written: string[] = []
    let othersWritten!: () => void
    const allOthers = new Promise<void>((resolve) => (othersWritten = resolve))
    const transports = Object.fromEntries(
      names.map((n) => [n, new RecordedNode(n, GOOD, n === 'n40' ? () => allOthers : undefined)]),
    )
    let inFlightMax = 0
    let inFlight = 0
    const snapshot = await collectInventory(inventory(names), {
      version: 'test',
      parallel: 4,
      timeoutMs: 60_000,
      transportFactory: (n) => transports[n.name]!,
      onProgress: (p) => {
        if (p.phase === 'probing') inFlightMax = Math.max(inFlightMax, ++inFlight)
        else if (p.phase !== 'waiting') inFlight--
      },
      onState: async (node, state) => {
        expect(state.links.length).toBeGreaterThan(0)
        written.push(node)
        if (written.length === names.length - 1) othersWritten()
      },
    })
    expect(written.slice(0, -1).sort()).toEqual(names.filter((n) => n !== 'n40').sort())
    expect(written.at(-1)).toBe('n40')
    // the snapshot holds the nodes and errors, no state: memory is bounded by the nodes in flight
    expect(snapshot.nodeStates).toEqual({})
    expect(snapshot.nodes.map((n) => n.name)).toEqual(names)
    expect(inFlightMax).toBeLessThanOrEqual(4)
  })

  it('a JSON Lines spool reads back as the snapshot collected whole, in node order', async () => {
    const {openLinesSpool} = await import('../../src/model/snapshot-file.js')
    const {readSnapshotFile} = await import('../../src/model/snapshot-file.js')
    const {openUserOutput} = await import('../../src/util/files.js')
    const {mkdtempSync, rmSync} = await import('node:fs')
    const {tmpdir} = await import('node:os')
    const path = await import('node:path')
    const names = ['a1', 'a2', 'a3', 'a4', 'a5']
    // answers in reverse order: the lines are written as the nodes answer
    const gate = names.map(() => Promise.withResolvers<void>())
    const transports = Object.fromEntries(names.map((n, i) => [n, new RecordedNode(n, GOOD, () => gate[i]!.promise)]))
    const whole = collectInventory(inventory(names), {
      version: 'test',
      parallel: 5,
      transportFactory: (n) => transports[n.name]!,
    })
    for (const g of [...gate].reverse()) g.resolve()
    const expected = await whole
    for (const g of gate) g.resolve()

    const dir = mkdtempSync(path.join(tmpdir(), 'sk-spool-'))
    try {
      // without and with each node's cluster facts and the index (as collect writes it)
      for (const file of ['out.jsonl', 'out.jsonl.gz', 'facts.jsonl', 'facts.jsonl.gz']) {
        const gate2 = names.map(() => Promise.withResolvers<void>())
        const transports2 = Object.fromEntries(
          names.map((n, i) => [n, new RecordedNode(n, GOOD, () => gate2[i]!.promise)]),
        )
        const {factsMakerFor} = await import('../../src/analyze/checks/index.js')
        const spool = await openLinesSpool(
          dir,
          file.startsWith('facts') ? factsMakerFor(inventory(names).cluster) : undefined,
        )
        const order: string[] = []
        const run = collectInventory(inventory(names), {
          version: 'test',
          parallel: 5,
          transportFactory: (n) => transports2[n.name]!,
          onState: (node, state) => {
            order.push(node)
            return spool.add(node, state)
          },
        })
        for (const g of [...gate2].reverse()) {
          g.resolve()
          await new Promise((r) => setTimeout(r, 5))
        }
        const skeleton = await run
        const out = await openUserOutput(path.join(dir, file))
        await out.commit(spool.chunks(skeleton), {gzip: file.endsWith('.gz')})
        await spool.close()
        expect(order).toEqual([...names].reverse())
        const back = await readSnapshotFile(path.join(dir, file))
        expect(Object.keys(back.nodeStates)).toEqual(names)
        // the same snapshot but for the clocks (when the run and each node's probe happened)
        const timeless = (x: typeof back) => ({
          ...x,
          startedAt: '',
          finishedAt: '',
          nodeStates: Object.fromEntries(Object.entries(x.nodeStates).map(([k, v]) => [k, {...v, collectedAt: ''}])),
        })
        expect(timeless(back)).toEqual(timeless(expected))
      }
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
