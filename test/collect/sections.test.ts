import {describe, expect, it} from 'vitest'

import {NODE_SECTIONS} from '../../src/collect/probe.js'
import {splitProbeOutput, subRecords} from '../../src/collect/sections.js'
import {probeFixture} from '../helpers/fixtures.js'

describe('splitting probe output', () => {
  it('a real output: started, done, every node section ok, bodies exact', () => {
    const {split, text} = probeFixture('flannel-vxlan-node1.out')
    expect(split.started).toBe(true)
    expect(split.done).toBe(true)
    expect(split.format).toBe(1)
    for (const s of NODE_SECTIONS) expect(split.sections.get(s)?.status, s).toBe('ok')
    // the body is exactly what the command printed: ip -j ends its JSON with a newline
    const links = split.sections.get('links')!.body
    expect(links.endsWith(']\n')).toBe(true)
    expect(text).toContain(links)
    expect(split.sections.get('bird-protocols')).toMatchObject({
      status: 'absent',
      message: expect.stringMatching(/^no BIRD control socket at /),
    })
  })

  it('pod sections nest inside the section that entered the pod', () => {
    const {split} = probeFixture('flannel-vxlan-node1.out')
    expect(split.sections.get('pod.0')).toMatchObject({status: 'ok', body: ''})
    expect(split.sections.get('pod.1.routes4')!.status).toBe('ok')
  })

  it('failing commands keep their exit code and stderr', () => {
    const {split} = probeFixture('calico-ipip-node1.handmade.out')
    expect(split.sections.get('pod.1')).toMatchObject({
      status: 'error',
      code: 1,
      message: expect.stringContaining('nsenter: cannot open'),
    })
  })

  it('output cut in the middle: the open sections are truncated, the rest stays', () => {
    const {text, marker} = probeFixture('flannel-vxlan-node1.out')
    const cut = text.indexOf(`${marker} B pod.1.routes4`) + 80
    const split = splitProbeOutput(text.slice(0, cut), marker)
    expect(split.done).toBe(false)
    expect(split.sections.get('links')!.status).toBe('ok')
    expect(split.sections.get('pod.1.routes4')!.status).toBe('truncated')
    expect(split.sections.get('pod.1')!.status).toBe('truncated')
    expect(split.sections.has('iptables')).toBe(false)
  })

  it('text that is not probe output has no sections and did not start', () => {
    const split = splitProbeOutput(
      '<html>502 Bad Gateway</html>\n@@NETCTL-other B links\n[]\n@@NETCTL-other E links 0\n',
      '@@NETCTL-abc',
    )
    expect(split.started).toBe(false)
    expect(split.sections.size).toBe(0)
  })

  it('sub-records of a section', () => {
    const {split} = probeFixture('calico-ipip-node1.handmade.out')
    expect(subRecords(split.sections.get('offloads')!.body).map((r) => r.name)).toEqual(['tunl0', 'vxlan.calico'])
  })
})
