/**
 * Lab tests of `netctl trace --probe` shared by the test files that run them:
 * a routed lab whose router drops the encapsulation (plain iptables in the
 * router's namespace), which ping confirms and the walk alone cannot see.
 */
import {spawn} from 'node:child_process'

import {expect, it} from 'vitest'

import type {Trace} from '../../src/model/trace.js'
import {netctl, netctlJson} from './cli.js'
import {describeLab, nsExec, ping, useLab} from './lab.js'

export const SRC = 'pod-node1-1'
export const DST = 'pod-node2-1'

/** Run `fn` while the router namespace drops UDP `port` in FORWARD; the rule is removed after, also on failure. */
export async function withRouterDrop(router: string, port: number, fn: () => Promise<void>): Promise<void> {
  const rule = ['FORWARD', '-p', 'udp', '--dport', String(port), '-j', 'DROP']
  const r = await nsExec(router, ['iptables', '-I', ...rule])
  expect(r.code, r.stderr).toBe(0)
  try {
    await fn()
  } finally {
    await nsExec(router, ['iptables', '-D', ...rule])
  }
}

/**
 * Run `fn` while each of `ifaces` of namespace `netns` sends ICMPv6 echo requests to ff02::2 every 50 ms:
 * link-local multicast every host on its link receives, as neighbour discovery and MLD send on their own.
 * The senders (started here) are ended by their pids after, also on failure.
 */
export async function withLinkChatter(netns: string, ifaces: string[], fn: () => Promise<void>): Promise<void> {
  // ip netns exec execs ping: each child's pid is its ping's
  const senders = ifaces.map((iface) =>
    spawn('ip', ['netns', 'exec', netns, 'ping', '-6', '-n', '-q', '-i', '0.05', '-I', iface, 'ff02::2'], {
      stdio: 'ignore',
    }),
  )
  const exited = senders.map((c) => new Promise((resolve) => c.once('exit', resolve)))
  try {
    // let them start counting before the probe reads
    await new Promise((resolve) => setTimeout(resolve, 300))
    for (const c of senders) expect(c.exitCode, 'a chatter stopped at once').toBeNull()
    await fn()
  } finally {
    for (const c of senders) c.kill('SIGTERM')
    await Promise.all(exited)
  }
}

/**
 * With ssh: the lab's nodes run sshd and every trace reaches them over SSH (`--transport ssh`), the probe's send included.
 * With routerPortDown: also the router's link to node2's subnet set down (no node's state shows it).
 */
export function underlayDropCase(
  prefix: string,
  backend: string,
  port: number,
  opts: {ssh?: boolean; routerPortDown?: boolean} = {},
): void {
  const over = opts.ssh ? ['--transport', 'ssh'] : []
  describeLab(`trace --probe, ${backend} across a router that drops UDP ${port}${opts.ssh ? ', over SSH' : ''}`, () => {
    const lab = useLab(prefix, [
      '--nodes',
      '2',
      '--pods-per-node',
      '1',
      '--backend',
      backend,
      '--topology',
      'routed',
      ...(opts.ssh ? ['--ssh'] : []),
    ])

    it('confirms a healthy pair', async () => {
      const r = await netctlJson<Trace>(['trace', SRC, DST, '--lab', lab.get().name, ...over, '--probe', '--json'])
      expect(r.code, r.stderr).toBe(0)
      expect(r.json.disposition).toBe('DELIVERED')
      expect(r.json.probe).toMatchObject({verdict: 'confirmed', sent: 3, answered: 3, firstMissing: null})
    })

    it('says UNDERLAY_DROP naming both nodes and the port, where ping fails and the walk alone says DELIVERED', async () => {
      const {name, nodes, pods} = lab.get()
      const [n1, n2] = [nodes.find((n) => n.name === 'node1')!, nodes.find((n) => n.name === 'node2')!]
      await withRouterDrop(`${name}.router`, port, async () => {
        expect(await ping(pods.find((p) => p.name === SRC)!.netns, pods.find((p) => p.name === DST)!.ip)).toBe(false)
        const walk = await netctlJson<Trace>(['trace', SRC, DST, '--lab', name, ...over, '--json'])
        expect(walk.json.disposition).toBe('DELIVERED')

        const r = await netctlJson<Trace>(['trace', SRC, DST, '--lab', name, ...over, '--probe', '--json'])
        expect(r.code).toBe(1)
        expect(r.json.disposition).toBe('UNDERLAY_DROP')
        expect(r.json.probe).toMatchObject({
          verdict: 'underlay-drop',
          answered: 0,
          lastSeen: {node: 'node1', direction: 'tx'},
          firstMissing: {node: 'node2', direction: 'rx'},
        })
        const f = r.json.findings.find((x) => x.code === 'UNDERLAY_DROP')!
        expect(f.subject).toBe(`node1 (${n1.ip}) → node2 (${n2.ip})`)
        expect(f.message).toContain(`UDP ${port}`)

        const text = await netctl(['trace', SRC, DST, '--lab', name, ...over, '--probe'])
        expect(text.code).toBe(1)
        expect(text.stdout, text.stdout).toMatch(/^UNDERLAY_DROP/)
        expect(text.stdout).toContain('Probe  UNDERLAY_DROP')
      })
    })

    // What made a lost probe seem to reach node2 (issue 17): a link's own IPv6 chatter (router
    // solicitations, MLD reports) counted by node2's eth0, here made certain and heavier
    it("stays UNDERLAY_DROP while the router's leg on node2's subnet sends IPv6 link-local multicast that node2's eth0 counts", async () => {
      const {name} = lab.get()
      await withRouterDrop(`${name}.router`, port, () =>
        withLinkChatter(`${name}.router`, ['eth-b'], async () => {
          const r = await netctlJson<Trace>(['trace', SRC, DST, '--lab', name, ...over, '--probe', '--json'])
          expect(r.code, r.stderr).toBe(1)
          expect(r.json.disposition).toBe('UNDERLAY_DROP')
          expect(r.json.probe).toMatchObject({
            verdict: 'underlay-drop',
            answered: 0,
            lastSeen: {node: 'node1', direction: 'tx'},
            firstMissing: {node: 'node2', interface: 'eth0', direction: 'rx'},
          })
          // as many packets as the probe sent, or more, arrived on node2's eth0 meanwhile: all of them IPv6 multicast
          const rx = r.json.probe!.counters.find(
            (c) => c.node === 'node2' && c.interface === 'eth0' && c.direction === 'rx',
          )
          expect(rx?.ipv6Multicast).toBeGreaterThanOrEqual(r.json.probe!.sent)
          expect(rx?.packets).toBeLessThan(r.json.probe!.sent)
        }),
      )
    })

    if (opts.routerPortDown)
      it("says UNDERLAY_DROP node1 → node2 when the router's link to node2's subnet is down, as ping finds", async () => {
        const {name, nodes, pods} = lab.get()
        const [n1, n2] = [nodes.find((n) => n.name === 'node1')!, nodes.find((n) => n.name === 'node2')!]
        // eth-b: the router's leg on node2's subnet (src/lab/build.ts); node2 keeps its carrier
        const router = `${name}.router`
        expect((await nsExec(router, ['ip', 'link', 'set', 'eth-b', 'down'])).code).toBe(0)
        try {
          expect(await ping(pods.find((p) => p.name === SRC)!.netns, pods.find((p) => p.name === DST)!.ip)).toBe(false)
          const r = await netctlJson<Trace>(['trace', SRC, DST, '--lab', name, ...over, '--probe', '--json'])
          expect(r.code).toBe(1)
          expect(r.json.disposition).toBe('UNDERLAY_DROP')
          expect(r.json.findings.map((f) => f.code)).not.toContain('MODEL_DISAGREES')
          expect(r.json.probe).toMatchObject({
            verdict: 'underlay-drop',
            lastSeen: {node: 'node1', direction: 'tx'},
            firstMissing: {node: 'node2', direction: 'rx'},
          })
          expect(r.json.findings.find((f) => f.code === 'UNDERLAY_DROP')?.subject).toBe(
            `node1 (${n1.ip}) → node2 (${n2.ip})`,
          )
        } finally {
          await nsExec(router, ['ip', 'link', 'set', 'eth-b', 'up'])
        }
      })
  })
}
