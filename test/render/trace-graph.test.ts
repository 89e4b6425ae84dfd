import {describe, expect, it} from 'vitest'

import type {Trace} from '../../src/model/trace.js'
import {traceDot, traceMermaid} from '../../src/render/trace-graph.js'
import {dotProblems, mermaidProblems} from './graph-syntax.js'
import {delivered, fdbMiss, node1, node3} from './trace-fixtures.js'

/** Names a cluster may hand us that mean something to Mermaid or DOT. */
const hostile: Trace = {
  ...fdbMiss,
  src: {...fdbMiss.src, pod: 'web-7d9.v2', namespace: 'team.a-b'},
  hops: fdbMiss.hops.map((h, i) => ({
    ...h,
    netns: ['ns"quote', 'a|b#1', '<b>x</b>', 'back\\slash'][i] ?? h.netns,
    out: i === 0 ? 'eth0"]; evil -->' : h.out,
  })),
}

describe('trace as Mermaid', () => {
  it('delivered: a valid flowchart, one box per hop in each direction, edges labelled with device and encap', () => {
    const m = traceMermaid(delivered)
    expect(mermaidProblems(m)).toEqual([])
    expect(m.split('\n')[0]).toBe('flowchart LR')
    const boxes = [...m.matchAll(/^ {4}([fr]\d+)\["/gm)].map((x) => x[1])
    expect(boxes).toEqual([
      ...delivered.hops.map((_, i) => `f${i + 1}`),
      ...delivered.returnPath!.hops.map((_, i) => `r${i + 1}`),
    ])
    expect(m).toContain(`f4 -->|"flannel.1 · vxlan VNI 1 → ${node3.ip}:8472"| f5`)
    expect(m).toContain(`r2 -->|"flannel.1 · vxlan VNI 1 → ${node1.ip}:8472"| r3`)
    expect(m).toContain('f2 -->|"cni0"| f3')
    expect(m).toMatch(/^ {2}class f8,r4 deliver$/m)
    expect(m).not.toMatch(/^ {2}class .* drop$/m)
  })

  it('a drop: the dropping hop highlighted, no reply group', () => {
    const m = traceMermaid(fdbMiss)
    expect(mermaidProblems(m)).toEqual([])
    expect(m).toMatch(/^ {2}class f4 drop$/m)
    expect(m).toContain('f4["4. node1 / demo.node1<br/>cni0 → flannel.1  drop"]')
    expect(m).not.toMatch(/subgraph reply/)
  })

  it('names with quotes, pipes, #, angle brackets, dots and dashes stay inside their labels', () => {
    const m = traceMermaid(hostile)
    expect(mermaidProblems(m)).toEqual([])
    expect(m).toContain('f1["1. node1 / ns#quot;quote<br/>- → eth0#quot;]; evil --#gt;  route"]')
    expect(m).toContain('f2["2. node1 / a#124;b#35;1<br/>')
    expect(m).toContain('f3["3. node1 / #lt;b#gt;x#lt;/b#gt;<br/>')
    expect(m).toContain('team.a-b/web-7d9.v2 (172.20.1.2)')
  })

  it('the checker itself catches broken output', () => {
    const m = traceMermaid(delivered)
    expect(mermaidProblems(m.replace(/\n {2}end\n/, '\n'))).not.toEqual([])
    expect(mermaidProblems(m.replace('f2["', 'f2["a"b'))).not.toEqual([])
    expect(mermaidProblems(m.replace('f1 -->', 'zz -->'))).toContain('zz used but not declared')
  })
})

describe('trace as DOT', () => {
  it('delivered: a valid digraph with the same boxes and edges', () => {
    const d = traceDot(delivered)
    expect(dotProblems(d)).toEqual([])
    expect(d.split('\n')[0]).toBe('digraph trace {')
    const boxes = [...d.matchAll(/^ {4}([fr]\d+) \[label=/gm)].map((x) => x[1])
    expect(boxes).toEqual([
      ...delivered.hops.map((_, i) => `f${i + 1}`),
      ...delivered.returnPath!.hops.map((_, i) => `r${i + 1}`),
    ])
    expect(d).toContain(`f4 -> f5 [label="flannel.1 · vxlan VNI 1 → ${node3.ip}:8472"];`)
    expect(d).toContain('subgraph cluster_reply {')
    expect(d).toContain('f8 [label="8. node3 / demo.node3.pod2\\neth0 → -  deliver", color="#008800"')
  })

  it('a drop: the dropping hop in red', () => {
    const d = traceDot(fdbMiss)
    expect(dotProblems(d)).toEqual([])
    expect(d).toMatch(
      /^ {4}f4 \[label="4\. node1 \/ demo\.node1\\ncni0 → flannel\.1 {2}drop", color="#cc0000", penwidth=3/m,
    )
    expect(d).not.toContain('cluster_reply')
  })

  it('quotes and backslashes in names are escaped', () => {
    const d = traceDot(hostile)
    expect(dotProblems(d)).toEqual([])
    expect(d).toContain('f1 [label="1. node1 / ns\\"quote\\n- → eth0\\"]; evil -->  route"];')
    expect(d).toContain('f4 [label="4. node1 / back\\\\slash\\n')
  })

  it('the checker itself catches broken output', () => {
    const d = traceDot(delivered)
    expect(dotProblems(d.replace(/\n {2}\}\n/, '\n'))).not.toEqual([])
    expect(dotProblems(d.replace('label="1.', 'label="1."'))).not.toEqual([])
    expect(dotProblems(d.replace('f1 -> f2', 'f1 -> zz'))).toContain('edge end zz not declared')
  })
})
