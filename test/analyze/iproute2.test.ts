import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {fdbLine, linkHead} from '../../src/analyze/iproute2.js'
import {parseFdb, parseLinks} from '../../src/collect/parse/iproute.js'
import type {FdbEntry} from '../../src/model/node-state.js'
import {run as run_} from '../../src/util/exec.js'
import {describeLab, nsExec, uniqueLabName} from '../helpers/lab.js'

const entry = (e: Partial<FdbEntry>): FdbEntry => ({
  mac: '5e:00:00:00:00:01',
  dev: 'vx0',
  self: false,
  permanent: false,
  static: false,
  ...e,
})

describe('fdbLine: a bridge FDB entry as `bridge fdb show` prints it', () => {
  it('flags before the bridge, the state last: self, then master BRIDGE, then permanent / static / the kernel state', () => {
    expect(fdbLine(entry({dst: '192.0.2.2', port: 4789, vni: 7, self: true, permanent: true}))).toBe(
      '5e:00:00:00:00:01 dev vx0 dst 192.0.2.2 port 4789 vni 7 self permanent',
    )
    expect(fdbLine(entry({self: true, master: 'br0', static: true, state: 'static'}))).toBe(
      '5e:00:00:00:00:01 dev vx0 self master br0 static',
    )
    expect(fdbLine(entry({master: 'br0', vlan: 5, state: 'stale'}))).toBe(
      '5e:00:00:00:00:01 dev vx0 vlan 5 master br0 stale',
    )
  })
})

// The tool is the oracle: entries made in a namespace of this test, read back with `bridge -j fdb`
// (as the probe reads them), must print as `bridge fdb show` prints the same entries.
describeLab('fdbLine and linkHead against the kernel and iproute2', () => {
  const ns = uniqueLabName('hhfmt')
  const run = async (argv: string[]): Promise<string> => {
    const r = await nsExec(ns, argv)
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`)
    return r.stdout
  }
  beforeAll(async () => {
    expect((await run_('ip', ['netns', 'add', ns])).code).toBe(0)
    for (const argv of [
      ['ip', 'link', 'add', 'br0', 'type', 'bridge'],
      ['ip', 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '1', 'dstport', '8472', 'nolearning'],
      ['ip', 'link', 'set', 'vx0', 'master', 'br0'],
      ['ip', 'link', 'set', 'br0', 'up'],
      ['ip', 'link', 'set', 'vx0', 'up'],
      ['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx0', 'dst', '192.0.2.1', 'self', 'permanent'],
      [
        'bridge',
        'fdb',
        'add',
        '5e:00:00:00:00:01',
        'dev',
        'vx0',
        'dst',
        '192.0.2.2',
        'port',
        '4789',
        'vni',
        '7',
        'self',
        'permanent',
      ],
      ['bridge', 'fdb', 'add', '5e:00:00:00:00:02', 'dev', 'vx0', 'master', 'static'],
      ['bridge', 'fdb', 'add', '5e:00:00:00:00:03', 'dev', 'vx0', 'dst', '192.0.2.3', 'self', 'static'],
    ])
      await run(argv)
  })
  afterAll(async () => {
    await run_('ip', ['netns', 'delete', ns])
  })

  it('every entry of vx0 prints as the tool prints it', async () => {
    const text = (await run(['bridge', 'fdb', 'show', 'br', 'br0'])).split('\n').filter(Boolean)
    const ours = parseFdb(await run(['bridge', '-j', 'fdb', 'show', 'br', 'br0'])).map(fdbLine)
    expect(ours.length).toBeGreaterThanOrEqual(4)
    expect(ours).toEqual(text)
  })

  it("a link's head is the start of `ip -o link show`", async () => {
    const [link] = parseLinks(await run(['ip', '-j', '-d', 'link', 'show', 'dev', 'vx0']))
    const text = await run(['ip', '-o', 'link', 'show', 'dev', 'vx0'])
    const head = linkHead(link!)
    // ip puts qdisc and the rest between mtu and master; the words netctl keeps come in the same order
    const words = head.split(' ')
    let at = 0
    for (const w of words) {
      const i = text.indexOf(w, at)
      expect(i, `${w} in ${text}`).toBeGreaterThanOrEqual(0)
      at = i + w.length
    }
  })
})
