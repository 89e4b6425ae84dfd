import {describe, expect, it} from 'vitest'

import {formatNetnsId, processStart} from '../../src/lab/netns-setup.js'
import {labHealth} from '../../src/lab/state.js'
import {judgeLabNetns} from '../../src/lab/teardown.js'
import {planLab} from '../../src/lab/topology.js'
import type {LabRecord, NetnsId} from '../../src/lab/types.js'

// identities as stat -L gives them: one nsfs device, one inode per namespace
const root: NetnsId = {dev: 4, ino: 4026531840}
const own: NetnsId = {dev: 4, ino: 4026532001}
const fabric: NetnsId = {dev: 4, ino: 4026532100}
const node1: NetnsId = {dev: 4, ino: 4026532101}
const stranger: NetnsId = {dev: 4, ino: 4026532999}

const verdicts = (
  record: Pick<LabRecord, 'netnsIds'> | undefined,
  names: Record<string, NetnsId | undefined>,
  pids: Record<string, number[]> = {},
) =>
  judgeLabNetns('demo', record, new Map(Object.entries(names)), new Map(Object.entries(pids).map(([k, v]) => [k, v])), {
    root,
    own,
  })

describe('judgeLabNetns: which names of a lab lab down may touch', () => {
  const record = {netnsIds: {'demo.fabric': fabric, 'demo.node1': node1}}

  it('takes the namespaces whose identity is the one the lab recorded', () => {
    expect(verdicts(record, {'demo.fabric': fabric, 'demo.node1': node1}).filter((v) => v.refused)).toEqual([])
  })

  it("never takes the machine's own namespace nor netctl's, even when the record claims it", () => {
    const v = verdicts({netnsIds: {'demo.fabric': root, 'demo.node1': own}}, {'demo.fabric': root, 'demo.node1': own})
    expect(v.map((x) => x.refused)).toEqual([
      "is the machine's own (root) network namespace",
      'is the network namespace netctl itself runs in',
    ])
    // nor without a record, and with no process seen in it
    expect(verdicts(undefined, {'demo.fabric': root})[0]!.refused).toMatch(/root/)
  })

  it("signals processes in a recorded namespace only while it carries the lab's mark (its name as lo's alias)", () => {
    const key = formatNetnsId(node1)
    const judge = (marks: Map<string, string | undefined>) =>
      judgeLabNetns('demo', record, new Map([['demo.node1', node1]]), new Map([[key, [4242]]]), {root, own}, marks)[0]!
        .refused
    expect(judge(new Map([[key, 'demo.node1']]))).toBeUndefined()
    // the inode of a freed namespace, handed to the next one made
    expect(judge(new Map([[key, '']]))).toBe(
      'has the inode lab demo recorded but not its mark (lo alias ""): another namespace has that inode now',
    )
    expect(judge(new Map([[key, 'other.node1']]))).toMatch(/not its mark \(lo alias "other.node1"\)/)
    expect(judge(new Map())).toMatch(/could not be read/)
  })

  it('refuses a recorded name that now points at another namespace', () => {
    expect(verdicts(record, {'demo.fabric': stranger, 'demo.node1': node1}).find((v) => v.refused)).toEqual({
      ns: 'demo.fabric',
      id: stranger,
      refused: `is not the namespace lab demo made (it is ${formatNetnsId(stranger)}, the lab made ${formatNetnsId(fabric)})`,
    })
  })

  it('takes a name the lab has no record of only while no process lives in it', () => {
    expect(verdicts(record, {'demo.extra': stranger})[0]!.refused).toBeUndefined()
    expect(verdicts(record, {'demo.extra': stranger}, {[formatNetnsId(stranger)]: [4242, 4243]})[0]!.refused).toBe(
      'is not recorded as made by lab demo, and 2 processes live in it',
    )
    // a name that vanished (or is not a namespace) has nothing to signal
    expect(verdicts(record, {'demo.gone': undefined})).toEqual([{ns: 'demo.gone'}])
  })
})

describe('labHealth: the one state of a lab', () => {
  const plan = planLab(
    {
      name: 'demo',
      nodes: 2,
      podsPerNode: 1,
      backend: 'flannel-vxlan',
      topology: 'flat',
      routeReflectors: 1,
      ssh: false,
    },
    '/tmp/x',
  )
  const ids: Record<string, NetnsId> = Object.fromEntries(
    ['demo.fabric', 'demo.node1', 'demo.node2', 'demo.node1.pod1', 'demo.node2.pod1'].map((ns, i) => [
      ns,
      {dev: 4, ino: 4026532100 + i},
    ]),
  )
  const record: LabRecord = {
    ...plan,
    status: 'up',
    createdAt: '2026-01-01T00:00:00Z',
    warnings: [],
    notes: [],
    version: 'x',
    netnsIds: ids,
  }

  it('is up with every namespace the lab made, degraded naming what is missing or not its own', () => {
    expect(labHealth(record, new Map(Object.entries(ids)))).toEqual({state: 'up', missing: [], foreign: []})
    const some = new Map(Object.entries(ids))
    some.delete('demo.node2.pod1')
    some.set('demo.fabric', stranger)
    expect(labHealth(record, some)).toEqual({
      state: 'degraded',
      missing: ['demo.node2.pod1'],
      foreign: ['demo.fabric'],
      reason: "missing demo.node2.pod1; not the lab's own namespace: demo.fabric",
    })
  })

  it('is creating while its lab up lives, failed when that process is gone or the up failed', () => {
    const self = {pid: process.pid, start: processStart(process.pid)!}
    expect(self.start).toBeGreaterThan(0)
    expect(labHealth({...record, status: 'creating', owner: self}, new Map()).state).toBe('creating')
    // the same PID with another start time is another process: the lab up is gone
    expect(labHealth({...record, status: 'creating', owner: {...self, start: self.start - 1}}, new Map()).state).toBe(
      'failed',
    )
    expect(labHealth({...record, status: 'failed'}, new Map()).state).toBe('failed')
    // what is there is said in every state: a failed lab's namespaces that are gone are missing
    expect(labHealth({...record, status: 'failed'}, new Map([['demo.fabric', ids['demo.fabric']!]])).missing).toEqual([
      'demo.node1',
      'demo.node2',
      'demo.node1.pod1',
      'demo.node2.pod1',
    ])
  })
})
