import {describe, expect, it} from 'vitest'

import {parseIpsetSave} from '../../../src/collect/parse/ipset.js'
import {fixture, sectionOf} from '../../helpers/fixtures.js'

// `ipset save` of a lab node holding Felix- and kube-proxy-shaped sets.
const sets = parseIpsetSave(fixture('ipset', 'lab-node1.txt'))
const set = (n: string) => sets.find((s) => s.name === n)!

describe('ipset save', () => {
  it('sets with type, family and create options', () => {
    expect(sets.map((s) => s.name)).toEqual([
      'cali40all-vxlan-net',
      'cali40masq-ipam-pools',
      'cali40all-ipam-pools',
      'cali40this-host',
      'KUBE-CLUSTER-IP',
      'KUBE-NODE-PORT-TCP',
      'cali40s:abcd',
      'cali40all-hosts-list',
    ])
    expect(set('cali40all-vxlan-net')).toMatchObject({type: 'hash:net', family: 'inet'})
    expect(set('cali40all-vxlan-net').options).toContain('maxelem')
    expect(set('cali40all-hosts-list')).toMatchObject({type: 'list:set'})
    expect(set('cali40all-hosts-list').family).toBeUndefined()
  })

  it('members as written, with their own options', () => {
    expect(set('cali40all-vxlan-net').members.map((m) => m.value)).toEqual(['172.31.0.11', '172.31.0.12'])
    expect(set('KUBE-CLUSTER-IP').members).toContainEqual({
      value: '10.96.0.10,udp:53',
      options: ['comment', 'kube-system/kube-dns:dns'],
    })
    expect(set('cali40this-host').members[0]).toEqual({value: '127.0.0.1', options: ['timeout', '0']})
    expect(set('cali40all-hosts-list').members.map((m) => m.value)).toEqual(['cali40this-host', 'cali40all-vxlan-net'])
    expect(set('cali40s:abcd').members[0]!.value).toBe('172.20.2.0/24,tcp:8080')
  })

  it('the probe section of a lab node parses', () => {
    expect(parseIpsetSave(sectionOf('calico-vxlan-netfilter-node1.out', 'ipset')).length).toBe(8)
    expect(parseIpsetSave('')).toEqual([])
  })

  it('truncated and malformed output is an error', () => {
    expect(() => parseIpsetSave(fixture('ipset', 'truncated.txt'))).toThrow(/line 3: unterminated quote/)
    expect(() => parseIpsetSave(fixture('ipset', 'add-before-create.txt'))).toThrow(/before it was created/)
    expect(() => parseIpsetSave('Name: x\nType: hash:ip\n')).toThrow(/expected create or add/)
  })
})
