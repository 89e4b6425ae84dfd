/**
 * `netctl trace POD svc/NAME` against the API-server emulator seeded from a real
 * lab: the Services and EndpointSlices read from the API (a named targetPort
 * resolved through the slice's port), the nodes reached through debug pods, the
 * per-endpoint walks as real connections agree.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {KubeCluster} from '../../src/cluster/kube.js'
import type {Trace} from '../../src/model/trace.js'
import {MANAGED_BY_LABEL} from '../../src/transport/kube-debug.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {KubeApiServer} from '../helpers/kube-apiserver.js'
import {describeLab, nsExec, useLab} from '../helpers/lab.js'

/** a live trace reads three nodes through debug pods: on a loaded 2-core machine, a minute or more */
const LONG = 300_000
const dir = mkdtempSync(path.join(tmpdir(), 'sv-trace-kube-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describeLab(
  'netctl trace to a Service from Kubernetes: the emulator over a 3-node flannel-vxlan lab with kube-proxy',
  () => {
    const lab = useLab('svk', ['--nodes', '3', '--pods-per-node', '2'])
    let server: KubeApiServer
    let kubeconfig = ''
    beforeAll(async () => {
      server = await KubeApiServer.start()
      server.seedFromLab(lab.get())
      kubeconfig = server.writeKubeconfig(path.join(dir, 'lab.kubeconfig'), {context: 'lab'})
    })
    afterAll(async () => {
      await server?.close()
    })

    it('Services and EndpointSlices read from the API: ClusterIPs, ports (a named targetPort through the slice), endpoints with their node and readiness', async () => {
      const cluster = await KubeCluster.connect({kubeconfig})
      const inv = await cluster.inventory()
      const web = inv.services!.find((s) => s.namespace === 'default' && s.name === 'web')!
      expect(web).toMatchObject({
        type: 'NodePort',
        clusterIP: '172.21.0.80',
        ports: [{name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080}],
      })
      const firstPods = lab.get().pods.filter((p) => p.name.endsWith('-1'))
      expect(
        web.endpoints!.map((e) => [e.addresses[0], e.nodeName, e.conditions?.ready, e.targetRef?.name]).sort(),
      ).toEqual(firstPods.map((p) => [p.ip, p.node, true, p.name]).sort())
      expect(
        inv
          .services!.find((s) => s.name === 'kube-dns')!
          .ports.map((p) => `${p.name} ${p.port}/${p.protocol} → ${p.targetPort}`),
      ).toEqual(['dns 53/UDP → 53', 'dns-tcp 53/TCP → 53'])
      // spec.sessionAffinity ClientIP with its timeout; None is no field at all
      expect(inv.services!.find((s) => s.name === 'sticky')!.sessionAffinity).toEqual({
        clientIP: {timeoutSeconds: 10800},
      })
      expect(web.sessionAffinity).toBeUndefined()
      // spec.internalTrafficPolicy: Local kept, Cluster (the API's default) no field
      expect(inv.services!.find((s) => s.name === 'node-local')!.internalTrafficPolicy).toBe('Local')
      expect(web.internalTrafficPolicy).toBeUndefined()
      expect(inv.services!.find((s) => s.name === 'web-local')!.externalTrafficPolicy).toBe('Local')
      expect(web.externalTrafficPolicy).toBeUndefined()
      // spec.trafficDistribution, the endpoints' zones and hints, and the nodes' zone labels
      const zonal = inv.services!.find((s) => s.name === 'zonal')!
      expect(zonal.trafficDistribution).toBe('PreferClose')
      expect(zonal.endpoints!.map((e) => [e.nodeName, e.zone, e.hints]).sort()).toEqual([
        ['node1', 'zone-a', {forZones: [{name: 'zone-a'}]}],
        ['node2', 'zone-b', {forZones: [{name: 'zone-b'}]}],
      ])
      expect(web.trafficDistribution).toBeUndefined()
      // spec.externalIPs, a LoadBalancer's ingress VIPs and its health check port
      expect(web.externalIPs).toEqual(['172.23.0.80'])
      expect(inv.services!.find((s) => s.name === 'web-local')).toMatchObject({
        type: 'LoadBalancer',
        loadBalancerIPs: ['172.23.0.83'],
        healthCheckNodePort: 30083,
        externalTrafficPolicy: 'Local',
      })
      expect(inv.nodes.map((n) => n.labels?.['topology.kubernetes.io/zone'])).toEqual(['zone-a', 'zone-b', 'zone-a'])
      expect(server.requests.some((r) => r.path.startsWith('/apis/discovery.k8s.io/v1/endpointslices'))).toBe(true)
    })

    it(
      'trace pod-node1-2 svc/web -n default: 3 of 3 endpoints DELIVERED both ways, the translation by kube-proxy on node1; the pods real connections reach are those; no debug pod left',
      async () => {
        const r = await netctlJson<Trace>([
          'trace',
          'pod-node1-2',
          'svc/web',
          '-n',
          'default',
          '--kubeconfig',
          kubeconfig,
        ])
        expect(r.code, r.stderr).toBe(0)
        const validate = validatorFor('trace')
        expect(validate(r.json), describeSchemaError(validate.errors)).toBe(true)
        expect(r.json.service).toMatchObject({
          namespace: 'default',
          name: 'web',
          reached: 3,
          total: 3,
          port: {name: 'http', targetPort: 8080},
        })
        expect(r.json.translation).toMatchObject({node: 'node1', agent: 'kube-proxy', hook: 'PREROUTING'})
        const src = lab.get().pods.find((p) => p.name === 'pod-node1-2')!
        const real = await nsExec(
          src.netns,
          ['sh', '-c', 'for i in $(seq 30); do nc -w 1 172.21.0.80 80 </dev/null; done'],
          90_000,
        )
        const reached = [
          ...new Set(
            real.stdout
              .split('\n')
              .map((l) => l.trim())
              .filter(Boolean),
          ),
        ].sort()
        expect(reached).toEqual(
          r.json
            .endpoints!.filter((e) => e.disposition === 'DELIVERED' && e.returnDisposition === 'DELIVERED')
            .map((e) => e.pod)
            .sort(),
        )
        expect(server.list('pods').filter((p) => p.metadata.labels?.[MANAGED_BY_LABEL] === 'netctl')).toEqual([])
      },
      LONG,
    )

    it(
      'dns by its short form: kube-system/kube-dns over UDP 53, both endpoints reached',
      async () => {
        const dns = await netctlJson<Trace>(['trace', 'pod-node1-2', 'dns', '--kubeconfig', kubeconfig])
        expect(dns.code, dns.stderr).toBe(0)
        expect(dns.json.service).toMatchObject({
          namespace: 'kube-system',
          name: 'kube-dns',
          port: {protocol: 'UDP', port: 53},
          reached: 2,
          total: 2,
        })
      },
      LONG,
    )

    it(
      'an unknown Service or port is exit 2 in one line before any debug pod is made',
      async () => {
        const before = server.created.length
        const unknown = await netctl(['trace', 'pod-node1-2', 'svc/nope', '-n', 'default', '--kubeconfig', kubeconfig])
        expect(unknown.code).toBe(2)
        expect(unknown.stderr.trim().split('\n')[0]).toMatch(
          /^netctl: no Service default\/nope in cluster .*\(did you mean svc\/default\/.*\?\)$/,
        )
        const port = await netctl([
          'trace',
          'pod-node1-2',
          'svc/web',
          '-n',
          'default',
          '--port',
          'https',
          '--kubeconfig',
          kubeconfig,
        ])
        expect(port.code).toBe(2)
        expect(port.stderr).toContain("Service default/web has no port named 'https' (its ports: http 80/TCP)")
        expect(server.created.slice(before).filter((o) => o.kind === 'Pod')).toEqual([])
      },
      LONG,
    )
  },
)
