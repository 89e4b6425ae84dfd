/**
 * `netctl matrix --services` against a real dataplane: a 3-node flannel-vxlan
 * lab with kube-proxy's iptables rules, the Service `web` backed by the first
 * pod of every node. node3's forwarding is turned off with a plain sysctl:
 * from node1's and node2's pods the web column says 2 of 3 endpoints (node3's
 * not reached), from node3's pods none, and real TCP connects to the ClusterIP
 * agree (answers from exactly the endpoints the matrix says are reached).
 */
import {expect, it} from 'vitest'

import type {Matrix, MatrixServiceCell} from '../../../src/analyze/matrix.js'
import {netctlJson} from '../../helpers/cli.js'
import {describeLab, type LabUp, nsExec, useLab} from '../../helpers/lab.js'
import {answers, connectFrom} from '../../helpers/service-traffic.js'

const WEB_IP = '172.21.0.80'
const WEB = 'default/web:80/TCP'
const NO_ENDPOINTS = 'default/no-endpoints:80/TCP'
const CLIENTS = ['default/pod-node1-2', 'default/pod-node2-2', 'default/pod-node3-2']

const podNs = (l: LabUp, id: string) => l.pods.find((p) => `${p.namespace}/${p.name}` === id)!.netns

async function matrixOf(lab: string): Promise<{code: number; m: Matrix}> {
  const r = await netctlJson<Matrix>(['matrix', '--lab', lab, '--all-pods', '--services'])
  expect(r.json.serviceCells, r.stderr).toBeDefined()
  return {code: r.code, m: r.json}
}

const cell = (m: Matrix, src: string, service: string): MatrixServiceCell =>
  m.serviceCells!.find((c) => c.src === src && c.service === service)!

/** The pods a cell says answer: the Service's endpoints but the unreached ones. */
function reachedPods(m: Matrix, c: MatrixServiceCell): string[] {
  const unreached = new Set(c.unreached.map((u) => u.ip))
  return m.endpoints
    .filter((e) => ['default/pod-node1-1', 'default/pod-node2-1', 'default/pod-node3-1'].includes(e.id))
    .filter((e) => !unreached.has(e.ip))
    .map((e) => e.id.split('/')[1]!)
    .sort()
}

describeLab('matrix --services in a lab, kube-proxy iptables mode', () => {
  const lab = useLab('ms-svc', [
    '--nodes',
    '3',
    '--pods-per-node',
    '2',
    '--backend',
    'flannel-vxlan',
    '--proxy-mode',
    'iptables',
  ])

  it('healthy: web reaches its 3 endpoints from every pod, as 24 real connects do; the Service without endpoints is rejected', async () => {
    const l = lab.get()
    const {code, m} = await matrixOf(l.name)
    expect(code).toBe(1)
    expect(m.services!.map((s) => s.id)).toEqual([
      NO_ENDPOINTS,
      'default/node-local:80/TCP',
      'default/sticky:80/TCP',
      WEB,
      'default/web-local:80/TCP',
      'default/zonal:80/TCP',
      'kube-system/kube-dns:53/UDP',
      'kube-system/kube-dns:53/TCP',
    ])
    for (const src of m.endpoints) {
      expect(cell(m, src.id, WEB), src.id).toMatchObject({disposition: 'DELIVERED', reached: 3, total: 3})
      expect(cell(m, src.id, NO_ENDPOINTS).disposition).toBe('DENIED')
    }
    // healthy: every connect answers, however slowly the loaded machine lets the responder reply
    expect(new Set(await answers(24, () => connectFrom(podNs(l, CLIENTS[0]!), WEB_IP, 80, 5)))).toEqual(
      new Set(['pod-node1-1', 'pod-node2-1', 'pod-node3-1']),
    )
    // trafficDistribution PreferClose: node3 (zone-a) keeps to node1's endpoint, as its connects are answered
    expect(cell(m, CLIENTS[2]!, 'default/zonal:80/TCP')).toMatchObject({disposition: 'DELIVERED', reached: 1, total: 1})
    expect(new Set(await answers(8, () => connectFrom(podNs(l, CLIENTS[2]!), '172.21.0.84', 80, 5)))).toEqual(
      new Set(['pod-node1-1']),
    )
    const refused = await nsExec(podNs(l, CLIENTS[0]!), ['sh', '-c', 'nc -v -z -w 2 172.21.0.99 80 2>&1; echo rc=$?'])
    expect(refused.stdout).toMatch(/refused/i)
  })

  it("node3's forwarding off (sysctl): web 2 of 3 from node1's and node2's pods, none from node3's, as real connects answer", async () => {
    const l = lab.get()
    const node3 = l.nodes.find((n) => n.name === 'node3')!.netns
    const off = await nsExec(node3, ['sysctl', '-w', 'net.ipv4.ip_forward=0'])
    expect(off.code, off.stderr).toBe(0)
    try {
      const {code, m} = await matrixOf(l.name)
      expect(code).toBe(1)
      for (const src of CLIENTS.slice(0, 2)) {
        const c = cell(m, src, WEB)
        expect(c, src).toMatchObject({
          disposition: 'FORWARDING_DISABLED',
          reached: 2,
          total: 3,
          unreached: [{pod: 'default/pod-node3-1', node: 'node3', disposition: 'FORWARDING_DISABLED'}],
        })
        expect(c.findings).toContain('IP_FORWARD_DISABLED')
        // the kernel: answers from exactly the endpoints the cell says are reached, and some connects lost
        const got = await answers(24, () => connectFrom(podNs(l, src), WEB_IP, 80))
        expect([...new Set(got.filter((a) => a !== ''))].sort(), `${src}: ${got.join(',')}`).toEqual(reachedPods(m, c))
        expect(got, src).toContain('')
      }
      // node3's own pods: the DNAT is on node3 and every way out of cni0 is forwarded
      const c3 = cell(m, CLIENTS[2]!, WEB)
      expect(c3).toMatchObject({disposition: 'FORWARDING_DISABLED', reached: 0, total: 3})
      expect(await answers(6, () => connectFrom(podNs(l, CLIENTS[2]!), WEB_IP, 80))).toEqual(Array(6).fill(''))
    } finally {
      await nsExec(node3, ['sysctl', '-w', 'net.ipv4.ip_forward=1'])
    }
  })
})
