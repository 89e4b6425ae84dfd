import {spawn} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {expect, it} from 'vitest'

import {run} from '../../src/util/exec.js'
import {netctl, REPO} from '../helpers/cli.js'
import {describeLab, ipJson, nsExec, ping, useLab} from '../helpers/lab.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

interface Status {
  pid: number
  state: string
  reloads: number
  peers: Array<{name: string; txPackets: number; rxPackets: number}>
  drops: Record<string, number>
}

/** Wait until `check` holds, re-evaluating; fails with the last value seen. */
async function eventually<T>(
  what: string,
  get: () => Promise<T>,
  check: (v: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let v = await get()
  while (!check(v)) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)}`)
    await sleep(100)
    v = await get()
  }
  return v
}

/** The daemons udp mode runs in a node netns, found the way teardown finds them: by namespace. */
async function daemonsIn(netns: string): Promise<Array<{pid: number; comm: string; cmdline: string}>> {
  const r = await run('ip', ['netns', 'pids', netns])
  const out = []
  for (const pid of r.stdout.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
      out.push({pid, comm, cmdline})
    } catch {
      /* exited meanwhile */
    }
  }
  return out
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describeLab('lab up --backend flannel-udp (3 nodes)', () => {
  // no agents: one test needs a datagram from a source that is no peer, and flanneld's FLANNEL-POSTRTG
  // masquerades a pod's traffic to a node address into its own node's address, which is a peer
  // (the forwarder with the agents' rules is covered by the kernel oracle, test/analyze/trace/kernel.test.ts)
  const lab = useLab('udp', ['--nodes', '3', '--backend', 'flannel-udp', '--proxy-mode', 'none'])
  const node = (name: string) => lab.get().nodes.find((n) => n.name === name)!
  const pod = (name: string) => lab.get().pods.find((p) => p.name === name)!
  const udpDir = (nodeName: string) => path.join(lab.get().stateDir, 'nodes', nodeName, 'flannel-udp')
  const readStatus = (nodeName: string): Status =>
    JSON.parse(readFileSync(path.join(udpDir(nodeName), 'forwarder-status.json'), 'utf8')) as Status
  const forwarderPid = async (nodeName: string): Promise<number> =>
    (await daemonsIn(node(nodeName).netns)).find((d) => d.comm.startsWith('netctl-udp-forw'))!.pid

  /** SIGUSR1 makes the forwarder write its counters at once; wait for a status newer than `after`. */
  async function freshStatus(nodeName: string, check: (s: Status) => boolean): Promise<Status> {
    const pid = await forwarderPid(nodeName)
    return eventually(
      `status of ${nodeName}`,
      async () => {
        process.kill(pid, 'SIGUSR1')
        await sleep(50)
        return readStatus(nodeName)
      },
      check,
    )
  }
  const tx = (s: Status, peer: string) => s.peers.find((p) => p.name === peer)!.txPackets
  const rx = (s: Status, peer: string) => s.peers.find((p) => p.name === peer)!.rxPackets

  it('gives every node a TUN flannel0: <podCIDR>.0 with the cluster prefix, MTU underlay − 28, route for the cluster', async () => {
    for (const n of lab.get().nodes) {
      const [tun] = await ipJson(n.netns, ['-d', 'addr', 'show', 'dev', 'flannel0'])
      expect(tun.linkinfo.info_kind).toBe('tun')
      expect(tun.linkinfo.info_data.type).toBe('tun')
      // owned by a process, not a persistent device: it goes when its owner does
      expect(tun.linkinfo.info_data.persist).toBe(false)
      expect(tun.mtu).toBe(1472)
      expect(tun.flags).toContain('UP')
      const inet = tun.addr_info.filter((a: any) => a.family === 'inet').map((a: any) => `${a.local}/${a.prefixlen}`)
      expect(inet).toEqual([`${n.podCIDR.split('/')[0]}/16`])

      const routes = await ipJson(n.netns, ['route', 'show', 'exact', '172.20.0.0/16'])
      expect(routes.map((r: any) => r.dev)).toEqual(['flannel0'])
      const [cni0] = await ipJson(n.netns, ['addr', 'show', 'dev', 'cni0'])
      expect(
        cni0.addr_info.filter((a: any) => a.family === 'inet').map((a: any) => `${a.local}/${a.prefixlen}`),
      ).toEqual([`${n.podCIDR.split('/')[0].replace(/\.0$/, '.1')}/24`])
      // no vxlan device: whatever crosses nodes has to go through flannel0
      const links = await ipJson(n.netns, ['-d', 'link', 'show'])
      expect(links.filter((l: any) => l.linkinfo?.info_kind === 'vxlan')).toEqual([])
    }
  })

  it('routes a remote pod into flannel0 and a local pod to cni0 (kernel route lookup)', async () => {
    const n1 = node('node1').netns
    const [remote] = await ipJson(n1, ['route', 'get', pod('pod-node2-1').ip])
    expect(remote.dev).toBe('flannel0')
    expect(remote.prefsrc).toBe('172.20.1.0')
    const [local] = await ipJson(n1, ['route', 'get', pod('pod-node1-2').ip])
    expect(local.dev).toBe('cni0')
  })

  it('annotates the node as flannel writes it for udp', () => {
    const facts = JSON.parse(readFileSync(path.join(lab.get().stateDir, 'nodes', 'node2', 'node.json'), 'utf8'))
    expect(facts.annotations['flannel.alpha.coreos.com/backend-type']).toBe('udp')
    expect(facts.annotations['flannel.alpha.coreos.com/backend-data']).toBe('null')
    expect(facts.annotations['flannel.alpha.coreos.com/public-ip']).toBe(node('node2').ip)
  })

  it('pods ping each other across every node pair and on the same node, both ways', async () => {
    const pairs: Array<[string, string]> = [
      ['pod-node1-1', 'pod-node2-1'],
      ['pod-node1-2', 'pod-node3-1'],
      ['pod-node2-2', 'pod-node3-2'],
      ['pod-node1-1', 'pod-node1-2'],
    ]
    for (const [a, b] of pairs) {
      expect(await ping(pod(a).netns, pod(b).ip), `${a} → ${b}`).toBe(true)
      expect(await ping(pod(b).netns, pod(a).ip), `${b} → ${a}`).toBe(true)
    }
  })

  it('carries a full-size packet (pod MTU 1472, DF set) without fragmenting', async () => {
    const r = await nsExec(pod('pod-node3-1').netns, [
      'ping',
      '-n',
      '-c',
      '1',
      '-W',
      '2',
      '-M',
      'do',
      '-s',
      String(1472 - 28),
      pod('pod-node1-1').ip,
    ])
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })

  it('carries a TCP connection between pods on different nodes', async () => {
    const server = pod('pod-node2-1')
    const listening = nsExec(server.netns, ['nc', '-l', '7001'], 20_000)
    await eventually(
      'nc listening',
      () => nsExec(server.netns, ['ss', '-Htln', 'sport = :7001']).then((r) => r.stdout),
      (out) => out.includes('7001'),
    )
    const client = await nsExec(pod('pod-node1-1').netns, [
      'sh',
      '-c',
      `echo hello-over-8285 | nc -N -w 5 ${server.ip} 7001`,
    ])
    expect(client.code, client.stderr).toBe(0)
    const got = await listening
    expect(got.stdout.trim()).toBe('hello-over-8285')
  })

  it('counts the packets the forwarder carries per peer, on both ends', async () => {
    const s1 = await freshStatus('node1', () => true)
    const s2 = await freshStatus('node2', () => true)
    for (let i = 0; i < 3; i++) expect(await ping(pod('pod-node1-1').netns, pod('pod-node2-1').ip)).toBe(true)
    // each ping is a request node1 → node2 and a reply node2 → node1
    await freshStatus('node1', (s) => tx(s, 'node2') >= tx(s1, 'node2') + 3 && rx(s, 'node2') >= rx(s1, 'node2') + 3)
    await freshStatus('node2', (s) => rx(s, 'node1') >= rx(s2, 'node1') + 3 && tx(s, 'node1') >= tx(s2, 'node1') + 3)
  })

  it('drops a datagram on 8285 that does not come from a peer', async () => {
    const before = await freshStatus('node2', () => true)
    // a pod is no peer: node1 forwards its datagram to node2's port like any other packet
    await nsExec(pod('pod-node1-1').netns, ['sh', '-c', `printf x | nc -u -w 1 ${node('node2').ip} 8285`])
    await freshStatus('node2', (s) => s.drops.unknownSource > before.drops.unknownSource)
  })

  it('needs the forwarder: stopped on node2, node2 is cut off while the rest still works; restarted, all is back', async () => {
    const n2 = node('node2')
    const pid = await forwarderPid('node2')
    process.kill(pid, 'SIGTERM')
    await eventually(
      'forwarder gone',
      async () => alive(pid),
      (a) => !a,
    )
    expect(await ping(pod('pod-node1-1').netns, pod('pod-node2-1').ip, 1)).toBe(false)
    expect(await ping(pod('pod-node3-1').netns, pod('pod-node2-2').ip, 1)).toBe(false)
    expect(await ping(pod('pod-node1-1').netns, pod('pod-node3-1').ip)).toBe(true)
    // socat still owns flannel0: the kernel side is intact, only the carrier is gone
    expect((await ipJson(n2.netns, ['link', 'show', 'dev', 'flannel0'])).length).toBe(1)

    // start it again exactly as lab up does: the compiled forwarder with the node's config
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        n2.netns,
        process.execPath,
        path.join(REPO, 'dist/src/lab/udp-forwarder.js'),
        path.join(udpDir('node2'), 'forwarder.json'),
      ],
      {detached: true, stdio: 'ignore'},
    )
    child.unref()
    await eventually(
      'forwarder running again',
      async () => readStatus('node2'),
      (s) => s.pid === child.pid && s.state === 'running',
    )
    expect(await ping(pod('pod-node1-1').netns, pod('pod-node2-1').ip)).toBe(true)
    expect(await ping(pod('pod-node2-2').netns, pod('pod-node3-1').ip)).toBe(true)
  })

  it('re-reads its peers on SIGHUP: a peer taken out is unreachable (counted as noPeer), put back it is reachable', async () => {
    const configFile = path.join(udpDir('node1'), 'forwarder.json')
    const original = readFileSync(configFile, 'utf8')
    const pid = await forwarderPid('node1')
    const before = await freshStatus('node1', () => true)
    const reloads = before.reloads
    try {
      const config = JSON.parse(original)
      config.peers = config.peers.filter((p: {name: string}) => p.name !== 'node3')
      writeFileSync(configFile, JSON.stringify(config))
      process.kill(pid, 'SIGHUP')
      await eventually(
        'reloaded without node3',
        async () => readStatus('node1'),
        (s) => s.reloads === reloads + 1,
      )
      expect(readStatus('node1').peers.map((p) => p.name)).toEqual(['node2'])
      expect(await ping(pod('pod-node1-1').netns, pod('pod-node3-1').ip, 1)).toBe(false)
      await freshStatus('node1', (s) => s.drops.noPeer > before.drops.noPeer)
      expect(await ping(pod('pod-node1-1').netns, pod('pod-node2-1').ip)).toBe(true)
    } finally {
      writeFileSync(configFile, original)
      process.kill(pid, 'SIGHUP')
    }
    await eventually(
      'reloaded with node3',
      async () => readStatus('node1'),
      (s) => s.peers.some((p) => p.name === 'node3'),
    )
    expect(await ping(pod('pod-node1-1').netns, pod('pod-node3-1').ip)).toBe(true)
  })

  it('lab status exits 0; lab down ends socat and every forwarder and removes every namespace', async () => {
    const status = await netctl(['lab', 'status', '--name', lab.get().name, '--all-pairs'])
    expect(status.code, status.stdout + status.stderr).toBe(0)

    const daemons = (await Promise.all(lab.get().nodes.map((n) => daemonsIn(n.netns)))).flat()
    const socats = daemons.filter((d) => d.comm === 'socat')
    const forwarders = daemons.filter((d) => d.comm.startsWith('netctl-udp-forw'))
    expect(socats.length).toBe(3)
    expect(forwarders.length).toBe(3)
    for (const f of forwarders) expect(f.cmdline).toMatch(/^netctl-udp-forwarder \/.*\/flannel-udp\/forwarder\.json$/)

    const down = await netctl(['lab', 'down', '--name', lab.get().name])
    expect(down.code, down.stderr).toBe(0)
    for (const d of daemons) expect(alive(d.pid), `${d.comm} ${d.pid}`).toBe(false)
    const left = (await run('ip', ['netns', 'list'])).stdout
      .split('\n')
      .filter((l) => l.startsWith(`${lab.get().name}.`))
    expect(left).toEqual([])
    expect(existsSync(lab.get().stateDir)).toBe(false)
  })
})

describeLab('lab up --backend flannel-udp on the routed topology (2 nodes)', () => {
  const lab = useLab('udp', [
    '--nodes',
    '2',
    '--pods-per-node',
    '1',
    '--backend',
    'flannel-udp',
    '--topology',
    'routed',
  ])

  it('carries pod traffic across the router, where host-gw cannot', async () => {
    const [a, b] = lab.get().nodes
    expect(a!.subnet).not.toBe(b!.subnet)
    expect(lab.get().warnings).toEqual([])
    const [p1, p2] = lab.get().pods
    expect(await ping(p1!.netns, p2!.ip)).toBe(true)
    expect(await ping(p2!.netns, p1!.ip)).toBe(true)
    // the underlay path to the peer is via the router: the datagrams are routed, not bridged
    const [hop] = await ipJson(a!.netns, ['route', 'get', b!.ip])
    expect(hop.gateway).toBeDefined()
  })
})
