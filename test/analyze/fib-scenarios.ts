/**
 * Harder routing tables than a lab node has, built in namespaces of our own
 * (named `<lab>.<role>`), so the forwarding model meets the kernel on policy
 * rules, custom tables, reject routes, throw, multipath, metrics, down and
 * carrier-less links, onlink, prefsrc, scope-link and secondary addresses,
 * rp_filter and forwarding switches, IPv6, and proxy ARP.
 *
 * Address plan (inside these namespaces only): 172.30.0.0/16 (policy),
 * 172.29.0.0/16 and fd00:29::/32 (defaults), 172.28.0.0/16 (proxy ARP).
 */
import {run} from '../../src/util/exec.js'
import type {SpreadOptions} from './kernel-oracle.js'

export interface Scenario {
  /** short role, e.g. 'x1' */
  role: string
  description: string
  /** every namespace it makes, subject first */
  namespaces: string[]
  /** the namespace whose tables are compared */
  subject: string
  spread: SpreadOptions[]
  build(): Promise<void>
}

async function sh(argv: string[], input?: string): Promise<void> {
  const r = await run(argv[0] as string, argv.slice(1), input === undefined ? {} : {input})
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr.trim() || r.stdout.trim()}`)
}

/** `ip -n NS -batch -`: one process for many changes. */
const batch = (ns: string, lines: string[]) => sh(['ip', '-n', ns, '-batch', '-'], `${lines.join('\n')}\n`)

/** Write /proc/sys values inside a namespace (keys and values are constants of this file). */
function sysctls(ns: string, values: Record<string, string | number>): Promise<void> {
  const script = Object.entries(values)
    .map(([k, v]) => `echo ${v} > /proc/sys/${k.replace(/\./g, '/')}`)
    .join('\n')
  return sh(['ip', 'netns', 'exec', ns, 'sh', '-e', '-c', script])
}

async function addNamespaces(names: string[]): Promise<void> {
  for (const n of names) await sh(['ip', 'netns', 'add', n])
}

export async function deleteNamespaces(names: string[]): Promise<void> {
  for (const n of [...names].reverse()) await run('ip', ['netns', 'delete', n])
}

/**
 * x1: policy routing. Rules with from / to / iif / oif / fwmark / not / goto /
 * nop and rule actions; tables 100 and 200 and a missing 101; blackhole,
 * unreachable, prohibit and throw routes; multipath; metrics; a carrier-less
 * device (used, linkdown) and one whose routes the kernel ignores
 * (ignore_routes_with_linkdown); an admin-down device (its nexthop dead);
 * onlink; prefsrc; a scope-link and a secondary address; rp_filter strict on
 * a1, loose on a2; forwarding off on a4.
 */
export function policyScenario(lab: string): Scenario {
  const S = `${lab}.x1`
  const P = `${lab}.x1p`
  return {
    role: 'x1',
    description:
      'policy rules, custom tables, reject/throw routes, multipath, metrics, down and carrier-less links, onlink, prefsrc, rp_filter',
    namespaces: [S, P],
    subject: S,
    spread: [
      {
        // destinations only the rules know about
        dsts: ['70', '71', '72', '73', '74', '75', '76', '77', '78', '79'].map((n) => `172.30.${n}.1`),
        marks: [5, 0x15, 6],
        remoteSources: ['172.30.1.2', '172.30.0.2', '172.30.99.9', '172.30.2.7', '172.30.0.255'],
      },
    ],
    async build() {
      await addNamespaces([S, P])
      const peer = [0, 1, 2, 3, 4, 5, 6].map((i) => `link add a${i} type veth peer name b${i} netns ${P}`)
      await batch(S, [
        'link set lo up',
        ...peer,
        'addr add 172.30.0.1/24 dev a0',
        'addr add 172.30.1.1/24 dev a1',
        'addr add 172.30.2.1/24 dev a2',
        'addr add 172.30.3.1/24 dev a3',
        'addr add 172.30.4.1/24 dev a4 scope link',
        'addr add 172.30.44.1/24 dev a4',
        'addr add 172.30.44.3/16 dev a4',
        'addr add 172.30.44.2/24 dev a4',
        'addr add 172.30.5.1/24 dev a5',
        'addr add 172.30.6.1/24 dev a6',
        ...[0, 1, 2, 3, 4, 5, 6].map((i) => `link set a${i} up`),
      ])
      // b3 and b5 stay down: a3 and a5 have no carrier
      await batch(P, [
        'link set lo up',
        'addr add 172.30.0.2/24 dev b0',
        'addr add 172.30.1.2/24 dev b1',
        'addr add 172.30.2.2/24 dev b2',
        'addr add 172.30.44.9/24 dev b4',
        'addr add 172.30.6.2/24 dev b6',
        ...[0, 1, 2, 4, 6].map((i) => `link set b${i} up`),
      ])
      await sysctls(S, {'net.ipv4.ip_forward': 1})
      await sysctls(S, {
        'net.ipv4.conf.a1.rp_filter': 1,
        'net.ipv4.conf.a2.rp_filter': 2,
        'net.ipv4.conf.a4.forwarding': 0,
        'net.ipv4.conf.a5.ignore_routes_with_linkdown': 1,
      })
      await batch(S, [
        'route add default via 172.30.0.2',
        'route add blackhole 172.30.50.0/24',
        'route add unreachable 172.30.51.0/24',
        'route add prohibit 172.30.52.0/24',
        'route add throw 172.30.53.0/24',
        'route add 172.30.60.0/24 nexthop via 172.30.0.2 weight 1 nexthop via 172.30.1.2 weight 2',
        'route add 172.30.60.128/25 via 172.30.1.2',
        'route add 172.30.61.0/24 nexthop via 172.30.0.2 nexthop via 172.30.3.2',
        'route add 172.30.62.0/24 via 172.30.3.2',
        'route add 172.30.63.0/24 via 172.30.0.2 metric 10',
        'route add 172.30.63.0/24 via 172.30.1.2 metric 5',
        'route add 172.30.64.0/24 via 172.30.209.9 dev a2 onlink',
        'route add 172.30.65.0/24 via 172.30.2.2 src 172.30.0.1',
        'route add 172.30.66.0/24 dev a2 scope link',
        'route add 172.30.67.0/24 via 172.30.5.2 metric 1',
        'route add 172.30.67.0/24 via 172.30.1.2 metric 9',
        'route add 172.30.68.0/24 nexthop via 172.30.0.2 nexthop via 172.30.6.2',
        'route add 172.30.69.0/24 via 172.30.6.2 metric 5',
        'route add 172.30.69.0/24 via 172.30.0.2 metric 50',
        'route add 172.30.90.0/24 via 172.30.4.9',
        'route add 172.30.91.0/24 dev a4',
        'route add 172.30.93.0/24 via 172.30.44.9 src 172.30.44.2',
        'route add 172.30.128.0/17 via 172.30.2.2',
        'route add 172.30.67.0/24 via 172.30.2.2 dev a2 table 100',
        'route add default via 172.30.1.2 table 100',
        'route add throw 172.30.75.0/24 table 100',
        'route add blackhole 172.30.76.0/24 table 100',
        'route add 172.30.80.0/24 via 172.30.3.2 dev a3 table 100',
        'route add 172.30.71.0/24 via 172.30.2.2 table 200',
        'rule add from 172.30.2.0/24 lookup 100 pref 100',
        'rule add fwmark 0x10/0xf0 lookup 100 pref 110',
        'rule add iif a2 lookup 100 pref 120',
        'rule add to 172.30.70.0/24 prohibit pref 130',
        'rule add not to 172.30.0.0/16 lookup 100 pref 140',
        'rule add to 172.30.71.0/24 goto 200 pref 150',
        'rule add to 172.30.71.0/24 unreachable pref 160',
        'rule add to 172.30.77.0/24 lookup 101 pref 170',
        'rule add to 172.30.78.0/24 unreachable pref 180',
        'rule add to 172.30.71.0/24 lookup 100 pref 200',
        'rule add oif a3 lookup 100 pref 210',
        'rule add to 172.30.72.0/24 nop pref 220',
        'rule add to 172.30.73.0/24 blackhole pref 230',
        'rule add iif lo to 172.30.74.0/24 lookup 100 pref 240',
        'rule add iif nosuch lookup 100 pref 250',
        'rule add fwmark 0x5 table 100 pref 260',
        'rule add from 172.30.1.0/24 to 172.30.79.0/24 lookup 200 pref 270',
      ])
      // a6 goes down last: its single-path route disappears, its multipath nexthop is marked dead
      await batch(S, ['link set a6 down'])
    },
  }
}

/**
 * x2: the kernel's default rules only (so the kernel merges local into main
 * and checks sources the quick way), reject routes, metrics, multipath,
 * forwarding off on one device, and IPv6 with the same kinds of routes.
 */
export function defaultsScenario(lab: string): Scenario {
  const S = `${lab}.x2`
  const P = `${lab}.x2p`
  return {
    role: 'x2',
    description: 'default rules only, reject routes, metrics, multipath, per-device forwarding, IPv6',
    namespaces: [S, P],
    subject: S,
    spread: [
      {remoteSources: ['172.29.1.2', '172.29.0.2', '172.29.99.9', '172.29.0.255']},
      {family: 'inet6', remoteSources: ['fd00:29:1::2', 'fd00:29::2', 'fd00:29:99::9']},
    ],
    async build() {
      await addNamespaces([S, P])
      await batch(S, [
        'link set lo up',
        'link add c0 type veth peer name d0 netns ' + P,
        'link add c1 type veth peer name d1 netns ' + P,
        'link add c2 type veth peer name d2 netns ' + P,
        'addr add 172.29.0.1/24 dev c0',
        'addr add 172.29.1.1/24 dev c1',
        'addr add 172.29.2.1/24 dev c2',
        'addr add fd00:29::1/64 dev c0 nodad',
        'addr add fd00:29:1::1/64 dev c1 nodad',
        'link set c0 up',
        'link set c1 up',
        'link set c2 up',
      ])
      await batch(P, [
        'link set lo up',
        'addr add 172.29.0.2/24 dev d0',
        'addr add 172.29.1.2/24 dev d1',
        'addr add 172.29.2.2/24 dev d2',
        'addr add fd00:29::2/64 dev d0 nodad',
        'addr add fd00:29:1::2/64 dev d1 nodad',
        'link set d0 up',
        'link set d1 up',
        'link set d2 up',
      ])
      await sysctls(S, {'net.ipv4.ip_forward': 1, 'net.ipv6.conf.all.forwarding': 1})
      await sysctls(S, {'net.ipv4.conf.c2.forwarding': 0})
      await batch(S, [
        'route add default via 172.29.0.2',
        'route add blackhole 172.29.50.0/24',
        'route add unreachable 172.29.51.0/24',
        'route add prohibit 172.29.52.0/24',
        'route add 172.29.60.0/24 nexthop via 172.29.0.2 nexthop via 172.29.1.2',
        'route add 172.29.8.0/24 via 172.29.1.2 metric 5',
        'route add 172.29.8.0/24 via 172.29.2.2 metric 7',
        'route add 172.29.9.0/24 via 172.29.2.2',
        'route add ::/0 via fd00:29::2',
        'route add blackhole fd00:29:50::/48',
        'route add unreachable fd00:29:51::/48',
        'route add prohibit fd00:29:52::/48',
        'route add fd00:29:60::/48 via fd00:29:1::2 metric 5',
        'route add fd00:29:60::/48 via fd00:29::2 metric 10',
        'route add fd00:29:61::/48 nexthop via fd00:29:1::2 nexthop via fd00:29::2',
      ])
    },
  }
}

/**
 * x3: Calico-style pod plumbing for the neighbour model. The host x3 has three
 * pod veths: cali1 with proxy_arp (answers the pod's ARP for 169.254.1.1),
 * cali2 with nothing, cali3 with a proxy neighbour entry for 169.254.1.1; its
 * uplink up0 leads to x3u. Pods x3a / x3b / x3c have a /32 and
 * `default via 169.254.1.1 dev eth0`.
 */
export function proxyArpScenario(lab: string): Scenario {
  const H = `${lab}.x3`
  const U = `${lab}.x3u`
  const A = `${lab}.x3a`
  const B = `${lab}.x3b`
  const C = `${lab}.x3c`
  return {
    role: 'x3',
    description: 'calico-style /32 pods behind proxy ARP, behind a proxy neighbour entry, and with neither',
    namespaces: [H, U, A, B, C],
    subject: H,
    spread: [{remoteSources: ['172.28.1.5', '172.28.1.6', '172.28.1.7', '172.28.0.2']}],
    async build() {
      await addNamespaces([H, U, A, B, C])
      await batch(H, [
        'link set lo up',
        `link add up0 type veth peer name eth0 netns ${U}`,
        `link add cali1 type veth peer name eth0 netns ${A}`,
        `link add cali2 type veth peer name eth0 netns ${B}`,
        `link add cali3 type veth peer name eth0 netns ${C}`,
        'link set cali1 address ee:ee:ee:ee:ee:ee',
        'link set cali2 address ee:ee:ee:ee:ee:ee',
        'link set cali3 address ee:ee:ee:ee:ee:ee',
        'addr add 172.28.0.1/24 dev up0',
        'link set up0 up',
        'link set cali1 up',
        'link set cali2 up',
        'link set cali3 up',
        'route add default via 172.28.0.2',
        'route add 172.28.1.5/32 dev cali1 scope link',
        'route add 172.28.1.6/32 dev cali2 scope link',
        'route add 172.28.1.7/32 dev cali3 scope link',
        'neigh add proxy 169.254.1.1 dev cali3',
      ])
      await sysctls(H, {'net.ipv4.ip_forward': 1})
      await sysctls(H, {
        'net.ipv4.conf.cali1.proxy_arp': 1,
        'net.ipv4.neigh.cali1.proxy_delay': 0,
        'net.ipv4.conf.cali2.proxy_arp': 0,
        'net.ipv4.neigh.cali3.proxy_delay': 0,
      })
      await batch(U, [
        'link set lo up',
        'addr add 172.28.0.2/24 dev eth0',
        'link set eth0 up',
        'route add 172.28.1.0/24 via 172.28.0.1',
      ])
      for (const [ns, ip] of [
        [A, '172.28.1.5'],
        [B, '172.28.1.6'],
        [C, '172.28.1.7'],
      ] as const) {
        await batch(ns, [
          'link set lo up',
          `addr add ${ip}/32 dev eth0`,
          'link set eth0 up',
          'route add 169.254.1.1 dev eth0 scope link',
          'route add default via 169.254.1.1 dev eth0',
        ])
      }
    },
  }
}
