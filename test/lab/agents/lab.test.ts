import {readFile, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {expect, it} from 'vitest'

import {CLUSTER_DNS_IP} from '../../../src/lab/agents/defaults.js'
import {flannelNftables} from '../../../src/lab/agents/flanneld.js'
import {planLab} from '../../../src/lab/topology.js'
import {validateSnapshot} from '../../../src/model/snapshot.js'
import {validatorFor} from '../../../src/util/schema.js'
import {netctl, netctlJson} from '../../helpers/cli.js'
import {describeLab, type LabUp, nsExec, ping, useLab} from '../../helpers/lab.js'

interface AgentsLab extends LabUp {
  agents: {proxyMode: string; hostProfile: string; ruleSets: string[]}
  services: Array<{
    name: string
    namespace: string
    clusterIP: string
    ports: Array<{port: number; protocol: string; nodePort?: number}>
    endpoints: Array<{addresses: string[]; nodeName: string; targetRef: {name: string}}>
  }>
}

const get = (lab: {get: () => LabUp}): AgentsLab => lab.get() as AgentsLab

async function expectAllPodsReach(lab: AgentsLab): Promise<void> {
  const failures: string[] = []
  for (const a of lab.pods)
    for (const b of lab.pods) if (a !== b && !(await ping(a.netns, b.ip))) failures.push(`${a.name} -> ${b.name}`)
  expect(failures).toEqual([])
}

/** One request to ip:port from a namespace; what the responder said (its pod name), or '' with nc's stderr. */
async function ask(netns: string, ip: string, port: number, udp: boolean): Promise<{reply: string; stderr: string}> {
  // -v only for TCP: with -u, openbsd nc -v probes the port with datagrams of its own, each answered
  const r = await run(netns, ['sh', '-c', `echo q | nc ${udp ? '-u' : '-v'} -w 2 ${ip} ${port}`])
  return {reply: r.stdout.trim().split('\n')[0] ?? '', stderr: r.stderr}
}

function run(netns: string, argv: string[]) {
  return nsExec(netns, argv, 10_000)
}

/** The responders start detached: the first answer may need a moment. */
async function askUntil(netns: string, ip: string, port: number, udp: boolean): Promise<string> {
  for (let i = 0; i < 10; i++) {
    const {reply} = await ask(netns, ip, port, udp)
    if (reply) return reply
  }
  return ''
}

/**
 * Sixteen requests at once, each with its own source port, from a pod elsewhere to the first
 * endpoint of SERVICE on PORT (a line sent, as `ask` sends it): that endpoint's pod name and each
 * request's answer ('' for none).
 */
async function askAtOnce(
  lab: AgentsLab,
  service: string,
  port: number,
  udp: boolean,
): Promise<{endpoint: string; answers: string[]}> {
  const endpoint = lab.services.find((s) => s.name === service)!.endpoints[0]!
  const ip = endpoint.addresses[0]!
  const client = lab.pods.find((p) => p.name !== endpoint.targetRef.name)!
  // the responder is up: one answer first
  expect(await askUntil(client.netns, ip, port, udp)).toBe(endpoint.targetRef.name)
  const one = `(echo q | nc -n ${udp ? '-u -W 1 ' : ''}-w 2 ${ip} ${port} | head -n 1) &`
  const r = await run(client.netns, ['sh', '-c', `${Array(16).fill(one).join('\n')}\nwait`])
  return {endpoint: endpoint.targetRef.name, answers: r.stdout.trim().split('\n')}
}

/** The checks both labs share: Services reached through the kernel's DNAT, rejected without endpoints, NodePort on a node IP. */
function serviceChecks(lab: {get: () => LabUp}): void {
  it('answers the cluster DNS ClusterIP (UDP) from a pod on a node without a DNS endpoint, through conntrack DNAT', async () => {
    const l = get(lab)
    const dns = l.services.find((s) => s.name === 'kube-dns')!
    const endpointNodes = new Set(dns.endpoints.map((e) => e.nodeName))
    const client = l.pods.find((p) => !endpointNodes.has(p.node))!
    const node = l.nodes.find((n) => n.name === client.node)!
    const reply = await askUntil(client.netns, CLUSTER_DNS_IP, 53, true)
    expect(dns.endpoints.map((e) => e.targetRef.name)).toContain(reply)
    const endpointIP = dns.endpoints.find((e) => e.targetRef.name === reply)!.addresses[0]!
    const ct = await run(node.netns, ['conntrack', '-L', '-p', 'udp', '--orig-dst', CLUSTER_DNS_IP])
    // original direction to the ClusterIP, reply from the endpoint: the DNAT kube-proxy's rule did
    expect(ct.stdout).toMatch(
      new RegExp(
        `src=${client.ip.replace(/\./g, '\\.')} dst=${CLUSTER_DNS_IP.replace(/\./g, '\\.')} .*dport=53 .*src=${endpointIP.replace(/\./g, '\\.')} dst=${client.ip.replace(/\./g, '\\.')} sport=53`,
      ),
    )
  })

  it('answers every datagram of sixteen sent to a DNS endpoint at once, each to its own client', async () => {
    // socat's UDP fork mode left a quarter unanswered
    const {endpoint, answers} = await askAtOnce(get(lab), 'kube-dns', 53, true)
    expect(answers).toEqual(Array(16).fill(endpoint))
  })

  it('answers every connection of sixteen made to a web endpoint at once, each sending a line first', async () => {
    // the client's line went into an echo that had exited under socat's TCP fork mode: one connection in fifteen lost its answer
    const {endpoint, answers} = await askAtOnce(get(lab), 'web', 8080, false)
    expect(answers).toEqual(Array(16).fill(endpoint))
  })

  it('answers the cluster DNS over TCP too', async () => {
    const l = get(lab)
    const dns = l.services.find((s) => s.name === 'kube-dns')!
    expect(dns.endpoints.map((e) => e.targetRef.name)).toContain(
      await askUntil(l.pods.at(-1)!.netns, CLUSTER_DNS_IP, 53, false),
    )
  })

  it('refuses a connection to a Service without endpoints', async () => {
    const l = get(lab)
    const svc = l.services.find((s) => s.endpoints.length === 0)!
    const r = await ask(l.pods[0]!.netns, svc.clusterIP, svc.ports[0]!.port, false)
    expect(r.reply).toBe('')
    expect(r.stderr).toMatch(/refused/i)
  })

  it('answers the NodePort on a node IP, from another node', async () => {
    const l = get(lab)
    const svc = l.services.find((s) => s.ports.some((p) => p.nodePort))!
    const reply = await askUntil(l.nodes[0]!.netns, l.nodes[1]!.ip, svc.ports[0]!.nodePort!, false)
    expect(svc.endpoints.map((e) => e.targetRef.name)).toContain(reply)
  })

  it('reports its rule sets in lab status --json, as the schema says', async () => {
    const l = get(lab)
    const r = await netctlJson<{agents: AgentsLab['agents']}>(['lab', 'status', '--name', l.name, '--no-ping'])
    const validate = validatorFor('lab-status')
    expect(validate(r.json), JSON.stringify(validate.errors)).toBe(true)
    expect(r.json.agents).toEqual(l.agents)
  })
}

describeLab('lab agents: flannel vxlan, kube-proxy iptables, Docker host', () => {
  const lab = useLab('ag-fi', [
    '--nodes',
    '3',
    '--backend',
    'flannel-vxlan',
    '--proxy-mode',
    'iptables',
    '--host-profile',
    'docker',
  ])

  it('installs kube-proxy, flanneld and Docker rules, and says so in lab up --json', () => {
    const validate = validatorFor('lab-up')
    expect(validate(lab.get()), JSON.stringify(validate.errors)).toBe(true)
    expect(get(lab).agents.ruleSets).toEqual([
      'host:docker',
      'kube-proxy:iptables',
      'flanneld:iptables',
      'cni-bridge:hairpin',
    ])
  })

  it('has the kernel hold them: FORWARD policy DROP, the KUBE-/FLANNEL-/DOCKER- chains, rp_filter 2, hairpin on cni0 ports', async () => {
    const node = get(lab).nodes[0]!
    const save = (await run(node.netns, ['iptables-save'])).stdout
    expect(save).toMatch(/^:FORWARD DROP/m)
    for (const chain of [
      'KUBE-SERVICES',
      'KUBE-FORWARD',
      'KUBE-POSTROUTING',
      'KUBE-MARK-MASQ',
      'FLANNEL-FWD',
      'FLANNEL-POSTRTG',
      'DOCKER-USER',
      'DOCKER-FORWARD',
    ])
      expect(save).toContain(`:${chain} `)
    expect((await run(node.netns, ['cat', '/proc/sys/net/ipv4/conf/all/rp_filter'])).stdout.trim()).toBe('2')
    const ports = JSON.parse((await run(node.netns, ['bridge', '-j', '-d', 'link', 'show'])).stdout) as Array<{
      ifname: string
      master?: string
      hairpin?: boolean
    }>
    const podPorts = ports.filter((p) => p.master === 'cni0')
    expect(podPorts.length).toBeGreaterThan(0)
    expect(podPorts.every((p) => p.hairpin === true)).toBe(true)
  })

  it('accepts flanneld nftables table in the kernel too (nft -c)', async () => {
    const l = get(lab)
    const plan = planLab(
      {
        name: 'ag-x',
        nodes: 3,
        podsPerNode: 2,
        backend: 'flannel-vxlan',
        topology: 'flat',
        routeReflectors: 1,
        ssh: false,
      },
      '/tmp/x',
    )
    const file = path.join(os.tmpdir(), `${l.name}-flannel.nft`)
    await writeFile(file, flannelNftables(plan, plan.nodes[0]!))
    const r = await run(l.nodes[0]!.netns, ['nft', '-c', '-f', file])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  it('carries the Services into the snapshot netctl collect writes', async () => {
    const l = get(lab)
    const out = path.join(os.tmpdir(), `${l.name}-snapshot.json`)
    const r = await netctl(['collect', '--lab', l.name, '--output-file', out])
    expect(r.code, r.stderr).toBe(0)
    const snap = validateSnapshot(JSON.parse(await readFile(out, 'utf8')))
    expect(snap.services).toEqual(l.services)
    expect(snap.cluster.serviceCIDR).toBe('172.21.0.0/16')
  })

  it('still gives every pod pair connectivity under FORWARD DROP: the agents accept rules carry it', async () => {
    await expectAllPodsReach(get(lab))
  })

  serviceChecks(lab)
})

describeLab('lab agents: calico vxlan, kube-proxy nftables, firewalld host', () => {
  const lab = useLab('ag-cn', [
    '--nodes',
    '3',
    '--backend',
    'calico-vxlan',
    '--proxy-mode',
    'nftables',
    '--host-profile',
    'firewalld',
  ])

  it('installs kube-proxy nftables, Felix and firewalld, and says so', () => {
    expect(get(lab).agents.ruleSets).toEqual(['host:firewalld', 'kube-proxy:nftables', 'felix:iptables'])
  })

  it('has the kernel hold them: tables ip kube-proxy and inet firewalld, cali-* chains, ipsets, PERMANENT pod neighbours, rp_filter 1', async () => {
    const l = get(lab)
    const node = l.nodes[0]!
    const tables = (await run(node.netns, ['nft', 'list', 'tables'])).stdout
    expect(tables).toContain('table ip kube-proxy')
    expect(tables).toContain('table inet firewalld')
    const save = (await run(node.netns, ['iptables-save'])).stdout
    for (const chain of ['cali-INPUT', 'cali-FORWARD', 'cali-from-wl-dispatch', 'cali-nat-outgoing', 'cali-PREROUTING'])
      expect(save).toContain(`:${chain} `)
    const vxlanSet = (await run(node.netns, ['ipset', 'list', 'cali40all-vxlan-net'])).stdout
    for (const n of l.nodes) expect(vxlanSet).toContain(n.ip)
    const neigh = (await run(node.netns, ['ip', 'neigh', 'show', 'nud', 'permanent'])).stdout
    for (const pod of l.pods.filter((p) => p.node === node.name))
      expect(neigh).toMatch(new RegExp(`^${pod.ip.replace(/\./g, '\\.')} dev cali\\S+ lladdr`, 'm'))
    expect((await run(node.netns, ['cat', '/proc/sys/net/ipv4/conf/all/rp_filter'])).stdout.trim()).toBe('1')
  })

  it('gives every pod pair connectivity', async () => {
    await expectAllPodsReach(get(lab))
  })

  serviceChecks(lab)
})
