import {describe, expect, it} from 'vitest'

import {rolloutState} from '../../src/backend/act/kubernetes.js'
import {describeKubeChange, kubeChange, netConfWithBackend} from '../../src/backend/plan/kube-objects.js'
import {type ClusterObjects, detectCni} from '../../src/cluster/detect.js'
import {readFixture} from '../helpers/kube-apiserver.js'

/** The objects detection reads, from the fixtures as a real server returns them. */
function objectsOf(...files: string[]): ClusterObjects {
  const all = files.flatMap((f) => readFixture(f))
  const of = (kind: string) => all.filter((o) => o.kind === kind) as any[]
  const crd = (kind: string) => (of(kind).length > 0 ? {[`${kind[0]!.toLowerCase()}${kind.slice(1)}s`]: of(kind)} : {})
  return {
    nodes: of('Node'),
    daemonSets: of('DaemonSet'),
    configMaps: of('ConfigMap'),
    networkPolicies: of('NetworkPolicy'),
    ...(of('IPPool').length > 0 ? {ipPools: of('IPPool')} : {}),
    ...crd('BGPConfiguration'),
    ...(of('BGPPeer').length > 0 ? {bgpPeers: of('BGPPeer')} : {}),
  } as ClusterObjects
}

const flannelNetConf = (): string => readFixture('flannel').find((o) => o.kind === 'ConfigMap')!.data['net-conf.json']

describe('netConfWithBackend: flannel net-conf.json with another Backend.Type', () => {
  it('keeps every other field of the upstream manifest, and its layout', () => {
    const before = flannelNetConf()
    const after = netConfWithBackend(before, 'host-gw')
    expect(JSON.parse(after)).toEqual({...JSON.parse(before), Backend: {Type: 'host-gw'}})
    // the upstream layout: two-space indentation, one field a line, a final newline
    expect(after).toBe(before.replace('"Type": "vxlan"', '"Type": "host-gw"'))
  })

  it("keeps the Backend's own fields and fields netctl does not know", () => {
    const before = JSON.stringify({
      Network: '10.244.0.0/16',
      SubnetLen: 24,
      Backend: {Type: 'vxlan', VNI: 4, Port: 4789, DirectRouting: true},
      Future: {x: 1},
    })
    const after = JSON.parse(netConfWithBackend(before, 'host-gw'))
    expect(after).toEqual({
      Network: '10.244.0.0/16',
      SubnetLen: 24,
      Backend: {Type: 'host-gw', VNI: 4, Port: 4789, DirectRouting: true},
      Future: {x: 1},
    })
  })

  it('adds a Backend when there was none (flannel took udp then)', () => {
    expect(JSON.parse(netConfWithBackend('{"Network": "10.244.0.0/16"}', 'vxlan'))).toEqual({
      Network: '10.244.0.0/16',
      Backend: {Type: 'vxlan'},
    })
  })
})

describe('kubeChange: what a switch writes in a Kubernetes cluster', () => {
  it('flannel: the ConfigMap detection found, the flannel DaemonSet, net-conf.json before and after', () => {
    const d = detectCni(objectsOf('flannel'))
    const c = kubeChange(d, 'flannel-vxlan', 'flannel-host-gw', flannelNetConf())
    if (typeof c === 'string') throw new Error(c)
    expect(c).toMatchObject({
      family: 'flannel',
      configMap: {namespace: 'kube-flannel', name: 'kube-flannel-cfg'},
      daemonSet: {namespace: 'kube-flannel', name: 'kube-flannel-ds'},
      before: flannelNetConf(),
    })
    expect(JSON.parse((c as {after: string}).after).Backend.Type).toBe('host-gw')
    expect(describeKubeChange(c)).toEqual([
      'configmap kube-flannel/kube-flannel-cfg: net-conf.json Backend.Type -> host-gw',
      'daemonset kube-flannel/kube-flannel-ds: restarted',
    ])
  })

  it('canal: the canal DaemonSet and canal-config', () => {
    const d = detectCni(objectsOf('canal'))
    const cm = readFixture('canal').find((o) => o.kind === 'ConfigMap' && o.data?.['net-conf.json'])!
    const c = kubeChange(d, 'flannel-vxlan', 'flannel-host-gw', cm.data['net-conf.json'])
    if (typeof c === 'string') throw new Error(c)
    expect(c.family === 'flannel' && c.daemonSet.name).toBe(
      readFixture('canal').find((o) => o.kind === 'DaemonSet')!.metadata.name,
    )
    expect(c.family === 'flannel' && c.configMap.name).toBe(cm.metadata.name)
  })

  it('calico: every enabled IPv4 pool gets the modes of the backend', () => {
    const d = detectCni(objectsOf('calico'))
    const pool = readFixture('calico').find((o) => o.kind === 'IPPool')!
    const c = kubeChange(d, 'calico-ipip', 'calico-vxlan')
    expect(c).toEqual({
      family: 'calico',
      pools: [
        {
          name: pool.metadata.name,
          before: {ipipMode: 'Always', vxlanMode: 'Never'},
          after: {ipipMode: 'Never', vxlanMode: 'Always'},
        },
      ],
    })
    const bgp = kubeChange(d, 'calico-ipip', 'calico-bgp')
    expect(typeof bgp !== 'string' && bgp.family === 'calico' && bgp.pools[0]!.after).toEqual({
      ipipMode: 'Never',
      vxlanMode: 'Never',
    })
    expect(describeKubeChange(c as Exclude<typeof c, string>)).toEqual([
      `ippool ${pool.metadata.name}: ipipMode Always -> Never, vxlanMode Never -> Always`,
    ])
  })

  it('refuses what is not an object change: another CNI, route reflection, no DaemonSet, no ConfigMap', () => {
    const flannel = detectCni(objectsOf('flannel'))
    expect(kubeChange(flannel, 'flannel-vxlan', 'calico-bgp', flannelNetConf())).toMatch(/changes the CNI itself/)
    expect(kubeChange(detectCni(objectsOf('calico')), 'calico-ipip', 'calico-rr')).toMatch(/BGP topology/)
    expect(kubeChange(flannel, 'flannel-vxlan', 'flannel-host-gw', undefined)).toMatch(/no flannel ConfigMap/)
    const embedded = {...flannel, details: {...flannel.details, daemonSets: []}}
    expect(kubeChange(embedded, 'flannel-vxlan', 'flannel-host-gw', flannelNetConf())).toMatch(/without a DaemonSet/)
    expect(kubeChange(flannel, 'flannel-vxlan', 'flannel-host-gw', '{not json')).toMatch(/not valid JSON/)
  })

  it('refuses BGP without BIRD (calico-node with CALICO_NETWORKING_BACKEND=vxlan)', () => {
    const d = detectCni(objectsOf('calico'))
    const noBird = {...d, details: {...d.details, calico: {...d.details.calico!, networkingBackend: 'vxlan'}}}
    expect(kubeChange(noBird, 'calico-vxlan', 'calico-bgp')).toMatch(/without BIRD/)
    expect(typeof kubeChange(noBird, 'calico-ipip', 'calico-vxlan')).toBe('object')
  })
})

describe('rolloutState: a DaemonSet rollout as kubectl rollout status judges it', () => {
  const ds = (generation: number, status: object) =>
    ({apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: {name: 'kube-flannel-ds', generation}, status}) as any
  it('done only when the new generation is observed and every pod updated and available', () => {
    expect(
      rolloutState(
        ds(2, {observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3}),
      ),
    ).toEqual({done: false, message: 'waiting for the controller to see the new template'})
    expect(
      rolloutState(
        ds(2, {observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 1, numberAvailable: 2}),
      ),
    ).toEqual({done: false, message: '1 of 3 updated pods scheduled'})
    expect(
      rolloutState(
        ds(2, {observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2}),
      ),
    ).toEqual({done: false, message: '2 of 3 updated pods available'})
    expect(
      rolloutState(
        ds(2, {observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3}),
      ).done,
    ).toBe(true)
  })
})
