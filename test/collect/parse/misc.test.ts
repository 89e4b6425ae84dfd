import {describe, expect, it} from 'vitest'

import {ParseError} from '../../../src/collect/parse/errors.js'
import {
  parseCniConf,
  parseEnvFile,
  parseKernel,
  parseNameList,
  parseNftJson,
  parseOffloads,
  parseProcesses,
  parseSysctls,
  sysctlKey,
} from '../../../src/collect/parse/misc.js'
import {planLab} from '../../../src/lab/topology.js'
import {sectionOf} from '../../helpers/fixtures.js'

const plan = planLab(
  {
    name: 'col-fx',
    nodes: 3,
    podsPerNode: 2,
    backend: 'flannel-vxlan',
    topology: 'flat',
    routeReflectors: 1,
    ssh: false,
  },
  '/nonexistent',
)

describe('sysctls', () => {
  it('names keys as sysctl does, a dot inside an interface name becoming /', () => {
    expect(sysctlKey('/proc/sys/net/ipv4/conf/flannel.1/rp_filter')).toBe('net.ipv4.conf.flannel/1.rp_filter')
    const s = parseSysctls(sectionOf('flannel-vxlan-node1.out', 'sysctls'))
    // the lab turns forwarding on in every node
    expect(s['net.ipv4.ip_forward']).toBe('1')
    expect(s['net.ipv4.conf.all.rp_filter']).toMatch(/^[012]$/)
    expect(Object.keys(s)).toContain('net.ipv4.conf.flannel/1.rp_filter')
    expect(Object.keys(s)).toContain('net.ipv4.conf.eth0.forwarding')
  })

  it('proxy_arp on cali* interfaces (Calico node)', () => {
    const s = parseSysctls(sectionOf('calico-ipip-node1.handmade.out', 'sysctls'))
    expect(s['net.ipv4.conf.cali1f2a3b4c5d6.proxy_arp']).toBe('1')
    expect(s['net.ipv4.conf.eth0.rp_filter']).toBe('2')
  })

  it('a line that is not PATH:VALUE is a ParseError', () => {
    expect(() => parseSysctls('/proc/sys/net/ipv4/ip_forward:1\ngarbage\n')).toThrow(ParseError)
    expect(() => parseSysctls('/proc/sys/net/ipv4/ip_forward:1\ngarbage\n')).toThrow(/line 2/)
  })
})

describe('flannel subnet.env', () => {
  it('reads what flanneld writes for the node', () => {
    const env = parseEnvFile(sectionOf('flannel-vxlan-node1.out', 'flannel-subnet-env'))
    expect(env.FLANNEL_NETWORK).toBe(plan.clusterCIDR)
    expect(env.FLANNEL_SUBNET).toBe(`${plan.nodes[0]!.podCIDR.replace(/\.0\//, '.1/')}`)
    expect(env.FLANNEL_MTU).toBe(String(plan.underlayMTU - 50))
  })

  it('comments, export and quotes are fine; other lines are a ParseError', () => {
    expect(parseEnvFile('# flannel\nexport FLANNEL_MTU="1450"\n')).toEqual({FLANNEL_MTU: '1450'})
    expect(() => parseEnvFile('FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUB')).toThrow(/line 2: expected KEY=VALUE/)
  })
})

describe('CNI', () => {
  it('conf files with their content, plugin binaries by name', () => {
    const files = parseCniConf(sectionOf('flannel-vxlan-node1.out', 'cni-conf'))
    expect(files.map((f) => f.name)).toEqual(['10-flannel.conflist'])
    const conf = JSON.parse(files[0]!.content) as {plugins: Array<{type: string}>}
    expect(conf.plugins.map((p) => p.type)).toContain('flannel')
    expect(parseNameList(sectionOf('flannel-vxlan-node1.out', 'cni-bin'))).toEqual([
      'bridge',
      'flannel',
      'host-local',
      'loopback',
      'portmap',
    ])
  })

  it('several files, one of them not JSON (kept as text)', () => {
    const files = parseCniConf(sectionOf('calico-ipip-node1.handmade.out', 'cni-conf'))
    expect(files.map((f) => f.name)).toEqual(['10-calico.conflist', 'calico-kubeconfig'])
    expect(files[1]!.content).toContain('kind: Config')
  })
})

describe('ethtool -k of tunnel devices', () => {
  it('per device, features on or off (sub-features too)', () => {
    const o = parseOffloads(sectionOf('flannel-vxlan-node1.out', 'offloads'))
    expect(Object.keys(o)).toEqual(['flannel.1'])
    expect(typeof o['flannel.1']!['tx-checksumming']).toBe('boolean')
    expect(o['flannel.1']).toHaveProperty('tx-checksum-ip-generic')
    const c = parseOffloads(sectionOf('calico-ipip-node1.handmade.out', 'offloads'))
    expect(c['vxlan.calico']!['tx-checksumming']).toBe(false)
    expect(c.tunl0!['rx-checksumming']).toBe(false)
  })

  it('a device ethtool cannot read is left out; other text is a ParseError', () => {
    expect(parseOffloads('\u0000F x\nCannot get device feature names: No such device\n')).toEqual({})
    expect(() => parseOffloads('\u0000F x\n<html>\n')).toThrow(ParseError)
  })
})

describe('processes, kernel, nft', () => {
  it('processes of interest with their arguments', () => {
    const p = parseProcesses(sectionOf('calico-ipip-node1.handmade.out', 'processes'))
    expect(p.map((x) => x.name)).toEqual(['calico-node', 'bird', 'bird6'])
    expect(p[1]!.args).toBe('bird -R -s /var/run/calico/bird.ctl -d -c /etc/calico/confd/config/bird.cfg')
    expect(() => parseProcesses('x y z\n')).toThrow(ParseError)
  })

  it('kernel release is one word', () => {
    expect(parseKernel(sectionOf('flannel-vxlan-node1.out', 'kernel'))).toMatch(/^\d+\.\d+/)
    expect(() => parseKernel('Linux version 6 (gcc)')).toThrow(ParseError)
  })

  it('nft -j list ruleset must be nft JSON', () => {
    const v = parseNftJson(sectionOf('flannel-vxlan-bird-iptables-node1.out', 'nftables')) as {
      nftables: Array<Record<string, unknown>>
    }
    expect(v.nftables.some((x) => 'table' in x)).toBe(true)
    expect(() => parseNftJson('{"nftables": {}}')).toThrow(/expected/)
    expect(() => parseNftJson('{"nftab')).toThrow(/invalid JSON/)
  })
})
