import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {countFindings, runChecks} from '../../src/analyze/checks/index.js'
import {parseSnapshot, type Snapshot} from '../../src/model/snapshot.js'
import {checkText} from '../../src/render/check.js'
import {traceText} from '../../src/render/trace.js'
import {checkResult} from '../../src/services/check-result.js'
import {traceSnapshotFile} from '../../src/services/trace.js'
import {fixture} from '../helpers/fixtures.js'

/** A node name a cluster can hold and a terminal must not obey: a newline, a screen clear, a colour, a C1 CSI. */
const HOSTILE = 'node1\n\u001b[2J\u001b[31mFAKE\u009b0m\r'
const SHOWN = 'node1??[2J?[31mFAKE?0m?'

/** The flannel vxlan lab snapshot with node1 renamed, and a fault on it (FDB entry for node3 gone) so that findings and hops name it. */
function hostile(): Snapshot {
  const s = JSON.parse(fixture('snapshots', 'flannel-vxlan-lab.json'))
  s.nodes[0].name = HOSTILE
  s.nodeStates[HOSTILE] = {...s.nodeStates.node1, node: HOSTILE}
  delete s.nodeStates.node1
  for (const p of s.pods) if (p.node === 'node1') p.node = HOSTILE
  const st = s.nodeStates[HOSTILE]
  const ip3 = s.nodes[2].internalIP
  st.fdb = st.fdb.filter((f: {dst?: string}) => f.dst !== ip3)
  st.links.find((l: {name: string}) => l.name === 'eth0').name = 'eth0\u001b]0;pwned\u0007'
  return parseSnapshot(JSON.stringify(s))
}

/** Every line of output is free of control characters: nothing a node name holds can move the cursor or forge a line. */
function expectPrintable(text: string): void {
  for (const line of text.split('\n')) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/)
}

describe('cluster values in text output are sanitised', () => {
  const saved = process.env.NO_COLOR
  beforeEach(() => {
    process.env.NO_COLOR = '1'
  })
  afterEach(() => {
    if (saved === undefined) delete process.env.NO_COLOR
    else process.env.NO_COLOR = saved
  })

  it('check: finding headers, messages and evidence keep one line per value', () => {
    const s = hostile()
    const findings = runChecks(s)
    expect(findings.some((f) => f.node === HOSTILE)).toBe(true)
    const text = checkText(
      checkResult(
        s,
        {kind: 'snapshot', name: 'x.json'},
        s.nodes.map((n) => n.name),
        findings,
        countFindings(findings),
      ),
      s.nodes.length,
    )
    expectPrintable(text)
    expect(text).toContain(`FDB_MISSING ${SHOWN}: flannel.1 → node3`)
    // the JSON keeps the name as it is: it is data, not display
    expect(findings.find((f) => f.code === 'FDB_MISSING')!.node).toBe(HOSTILE)
  })

  it('trace: the verdict, hops and their evidence', () => {
    const run = traceSnapshotFile(hostile(), {
      src: 'pod-node1-1',
      dst: 'pod-node3-1',
      protocol: 'icmp',
      size: 84,
      df: false,
    })
    expect(run.trace.hops.some((h) => h.node === HOSTILE)).toBe(true)
    const text = traceText(run.trace)
    expectPrintable(text)
    expect(text.split('\n').some((l) => /^\s+\d+ {2}node1\?\?\[2J\?\[31mFAKE\?0m\? /.test(l))).toBe(true)
  })
})
