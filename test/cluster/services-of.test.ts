/**
 * Services and EndpointSlices as the API server returns them (fixtures/kube/services.yaml) read into the
 * inventory's services: the addresses kube-proxy captures besides the ClusterIP (externalIPs, a load
 * balancer's VIP ingress but not a Proxy one nor a hostname), the health check port, trafficDistribution,
 * and the endpoints' zones and topology hints.
 */
import {describe, expect, it} from 'vitest'

import {servicesOf} from '../../src/cluster/kube.js'
import type {KubeEndpointSlice, KubeService} from '../../src/cluster/kube-types.js'
import {INVENTORY_API_VERSION} from '../../src/model/inventory.js'
import {validatorFor} from '../../src/util/schema.js'
import {readFixture} from '../helpers/kube-apiserver.js'

const objects = readFixture('services')
const services = servicesOf(
  objects.filter((o) => o.kind === 'Service') as unknown as KubeService[],
  objects.filter((o) => o.kind === 'EndpointSlice') as unknown as KubeEndpointSlice[],
)
const named = (name: string) => services.find((s) => s.name === name)!

describe('servicesOf: what kube-proxy captures and how it picks endpoints', () => {
  it('a LoadBalancer: its VIP ingress only (kube-proxy leaves a Proxy ingress and a hostname to the load balancer), its health check port and policy', () => {
    expect(named('shop')).toMatchObject({
      type: 'LoadBalancer',
      clusterIP: '10.96.14.7',
      loadBalancerIPs: ['203.0.113.40'],
      healthCheckNodePort: 31544,
      loadBalancerSourceRanges: ['203.0.113.0/24', '198.51.100.7/32'],
      externalTrafficPolicy: 'Local',
      ports: [{name: 'https', protocol: 'TCP', port: 443, targetPort: 8443, nodePort: 30443}],
    })
    expect(named('shop').externalIPs).toBeUndefined()
    expect(named('shop').endpoints![0]).toMatchObject({nodeName: 'worker-1', zone: 'eu-west-1a'})
    expect(named('shop').endpoints![0]!.hints).toBeUndefined()
  })

  it('externalIPs of a ClusterIP Service; no load-balancer IPs without a load balancer', () => {
    expect(named('legacy-gw')).toMatchObject({type: 'ClusterIP', externalIPs: ['198.51.100.20']})
    expect(named('legacy-gw').loadBalancerIPs).toBeUndefined()
  })

  it('trafficDistribution and the hints, zones and nodes by name, as the slice has them', () => {
    const catalog = named('catalog')
    expect(catalog.trafficDistribution).toBe('PreferClose')
    expect(catalog.endpoints!.map((e) => [e.addresses[0], e.zone, e.hints])).toEqual([
      ['10.244.1.30', 'eu-west-1a', {forZones: [{name: 'eu-west-1a'}], forNodes: [{name: 'worker-1'}]}],
      ['10.244.2.12', 'eu-west-1b', {forZones: [{name: 'eu-west-1b'}]}],
    ])
  })

  it('an inventory holding them is one the inventory schema accepts', () => {
    const validate = validatorFor('inventory')
    const inv = {
      apiVersion: INVENTORY_API_VERSION,
      kind: 'Inventory',
      cluster: {name: 'prod', backend: 'flannel-vxlan', clusterCIDR: '10.244.0.0/16', source: 'kubernetes'},
      nodes: [{name: 'worker-1', internalIP: '192.168.10.11', podCIDR: '10.244.1.0/24', access: {}}],
      pods: [],
      services,
    }
    expect(validate(inv), JSON.stringify(validate.errors)).toBe(true)
  })
})
