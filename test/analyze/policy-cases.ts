/**
 * The NetworkPolicy cases, one table for the evaluator's unit test
 * (policy-verdict.test.ts) and the lab oracle (test/lab/agents/policy-oracle.test.ts),
 * shaped after the Kubernetes network-policy conformance suite
 * (test/e2e/network/netpol): three namespaces x, y, z labelled ns=<name> (x and
 * y also team=red), pods a, b, c in each labelled pod=<name>, serving 80 and 81
 * over TCP, UDP and SCTP under named ports serve-<port>-<proto>; one policy set
 * per case, one packet per row. Addresses come from a world: a pod's, its
 * node's pod range, the cluster's, the nodes'.
 */
import type {PolicyProtocol} from '../../src/analyze/policy-verdict.js'
import type {SnapshotNetworkPolicy} from '../../src/model/snapshot.js'

/** Where the cases' pods and nodes are: pod keys are ns/name (x/a), node names node1, node2. */
export interface PolicyWorld {
  ip(key: string): string
  /** the pod range of the node pod `key` runs on */
  podCIDROf(key: string): string
  clusterCIDR: string
  nodeIP(node: string): string
  /** a range holding every node's address */
  nodeCIDR: string
}

export const POLICY_NAMESPACES = [
  {name: 'x', labels: {ns: 'x', team: 'red'}},
  {name: 'y', labels: {ns: 'y', team: 'red'}},
  {name: 'z', labels: {ns: 'z'}},
]
export const POLICY_PODS = ['a', 'b', 'c'] as const
/** every pod's container ports: 80 and 81 over each protocol, by name */
export const POLICY_PORTS = [80, 81].flatMap((port) =>
  (['TCP', 'UDP', 'SCTP'] as const).map((protocol) => ({
    name: `serve-${port}-${protocol.toLowerCase()}`,
    containerPort: port,
    protocol,
  })),
)

const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

type Spec = Record<string, unknown>
const np = (namespace: string, name: string, spec: Spec): SnapshotNetworkPolicy => ({namespace, name, spec})
const podSel = (pod: string) => ({matchLabels: {pod}})
const nsSel = (ns: string) => ({matchLabels: {'kubernetes.io/metadata.name': ns}})

export interface Row {
  from: string
  to: string
  allowed: boolean
  protocol?: PolicyProtocol | 'ICMP'
  port?: number
  /** the allowing rule, "x/p ingress[0]" */
  by?: string
  /** a piece of the closest rule's mismatch when denied */
  why?: RegExp
}
export interface Case {
  name: string
  policies: SnapshotNetworkPolicy[]
  rows: Row[]
}

const denyIngressX = np('x', 'deny-ingress', {podSelector: {}, policyTypes: ['Ingress']})
const denyEgressX = np('x', 'deny-egress', {podSelector: {}, policyTypes: ['Egress']})

/** The cases, with the addresses of a world: the unit test's, or a lab's. */
export function policyCases(w: PolicyWorld): Case[] {
  const ip = (key: string): string => w.ip(key)
  return [
    {
      name: 'no policy: everything passes',
      policies: [],
      rows: [
        {from: 'x/a', to: 'y/b', allowed: true},
        {from: 'z/c', to: 'x/a', allowed: true, protocol: 'UDP', port: 81},
      ],
    },
    {
      name: 'default-deny-ingress in x isolates every pod of x, not y',
      policies: [denyIngressX],
      rows: [
        {from: 'x/b', to: 'x/a', allowed: false, why: /^no ingress rule: a default deny/},
        {from: 'y/a', to: 'x/a', allowed: false},
        {from: 'x/a', to: 'y/a', allowed: true},
        {from: 'y/a', to: 'y/b', allowed: true},
      ],
    },
    {
      name: 'default-deny-all (ingress and egress) in x',
      policies: [np('x', 'deny-all', {podSelector: {}, policyTypes: ['Ingress', 'Egress']})],
      rows: [
        {from: 'x/a', to: 'y/a', allowed: false, why: /no egress rule/},
        {from: 'y/a', to: 'x/a', allowed: false, why: /no ingress rule/},
        {from: 'y/a', to: 'z/a', allowed: true},
      ],
    },
    {
      name: 'allow from pods within the server namespace by podSelector',
      policies: [
        np('x', 'x-a-allows-x-b', {podSelector: podSel('a'), ingress: [{from: [{podSelector: podSel('b')}]}]}),
      ],
      rows: [
        {from: 'x/b', to: 'x/a', allowed: true, by: 'x/x-a-allows-x-b ingress[0]'},
        {from: 'x/c', to: 'x/a', allowed: false, why: /pod x\/c \(labels \{"pod":"c"\}\) does not match podSelector/},
        // a podSelector alone names pods of the policy's namespace only
        {from: 'y/b', to: 'x/a', allowed: false, why: /not in namespace x/},
        {from: 'x/c', to: 'x/b', allowed: true},
      ],
    },
    {
      name: 'deny all ingress, then allow all ingress to x/a from any pod in any namespace',
      policies: [
        denyIngressX,
        np('x', 'allow-all-to-a', {
          podSelector: podSel('a'),
          ingress: [{from: [{podSelector: {}, namespaceSelector: {}}]}],
        }),
      ],
      rows: [
        {from: 'z/c', to: 'x/a', allowed: true, by: 'x/allow-all-to-a ingress[0]'},
        {from: 'x/a', to: 'x/b', allowed: false},
      ],
    },
    {
      name: 'allow ingress from pods in all namespaces (empty namespaceSelector)',
      policies: [
        np('x', 'allow-from-all-ns', {podSelector: podSel('a'), ingress: [{from: [{namespaceSelector: {}}]}]}),
      ],
      rows: [
        {from: 'x/b', to: 'x/a', allowed: true},
        {from: 'z/a', to: 'x/a', allowed: true},
        // an address outside the cluster is no pod of any namespace
        {from: '192.0.2.7', to: 'x/a', allowed: false, why: /192\.0\.2\.7 \(no pod\) is matched only by an ipBlock/},
      ],
    },
    {
      name: 'allow only from another namespace by namespaceSelector (the name label the API sets)',
      policies: [
        np('x', 'allow-from-y', {podSelector: podSel('a'), ingress: [{from: [{namespaceSelector: nsSel('y')}]}]}),
      ],
      rows: [
        {from: 'y/c', to: 'x/a', allowed: true},
        {from: 'x/b', to: 'x/a', allowed: false, why: /namespace x .* does not match namespaceSelector/},
        {from: 'z/a', to: 'x/a', allowed: false, why: /namespace z/},
      ],
    },
    {
      name: 'podSelector with matchExpressions In',
      policies: [
        np('x', 'in-b', {
          podSelector: podSel('a'),
          ingress: [{from: [{podSelector: {matchExpressions: [{key: 'pod', operator: 'In', values: ['b']}]}}]}],
        }),
      ],
      rows: [
        {from: 'x/b', to: 'x/a', allowed: true},
        {from: 'x/c', to: 'x/a', allowed: false},
      ],
    },
    {
      name: 'namespaceSelector with matchExpressions In',
      policies: [
        np('x', 'ns-in-y', {
          podSelector: podSel('a'),
          ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: 'ns', operator: 'In', values: ['y']}]}}]}],
        }),
      ],
      rows: [
        {from: 'y/a', to: 'x/a', allowed: true},
        {from: 'z/a', to: 'x/a', allowed: false},
      ],
    },
    {
      name: 'podSelector OR namespaceSelector (two peers): NotIn x, or pod b',
      policies: [
        np('x', 'or', {
          podSelector: podSel('a'),
          ingress: [
            {
              from: [
                {
                  namespaceSelector: {
                    matchExpressions: [{key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['x']}],
                  },
                },
                {podSelector: podSel('b')},
              ],
            },
          ],
        }),
      ],
      rows: [
        {from: 'y/c', to: 'x/a', allowed: true},
        {from: 'x/b', to: 'x/a', allowed: true},
        {from: 'x/c', to: 'x/a', allowed: false},
      ],
    },
    {
      name: 'podSelector AND namespaceSelector in one peer',
      policies: [
        np('x', 'and', {
          podSelector: podSel('a'),
          ingress: [
            {
              from: [
                {
                  namespaceSelector: {
                    matchExpressions: [{key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['x']}],
                  },
                  podSelector: podSel('b'),
                },
              ],
            },
          ],
        }),
      ],
      rows: [
        {from: 'y/b', to: 'x/a', allowed: true},
        {from: 'z/b', to: 'x/a', allowed: true},
        // pod matches, namespace does not: exactly one mismatch, the namespace
        {from: 'x/b', to: 'x/a', allowed: false, why: /^namespace x/},
        {from: 'y/a', to: 'x/a', allowed: false, why: /^pod y\/a/},
      ],
    },
    {
      name: 'namespaceSelector Exists / DoesNotExist on a namespace label',
      policies: [
        np('x', 'team-exists', {
          podSelector: podSel('a'),
          ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: 'team', operator: 'Exists'}]}}]}],
        }),
        np('x', 'team-absent', {
          podSelector: podSel('b'),
          ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: 'team', operator: 'DoesNotExist'}]}}]}],
        }),
      ],
      rows: [
        {from: 'y/a', to: 'x/a', allowed: true, by: 'x/team-exists ingress[0]'},
        {from: 'z/a', to: 'x/a', allowed: false},
        {from: 'z/a', to: 'x/b', allowed: true, by: 'x/team-absent ingress[0]'},
        {from: 'y/a', to: 'x/b', allowed: false},
      ],
    },
    {
      name: 'multiple podSelectors and namespaceSelectors',
      policies: [
        np('x', 'multi', {
          podSelector: podSel('a'),
          ingress: [
            {
              from: [
                {
                  namespaceSelector: {matchExpressions: [{key: 'ns', operator: 'NotIn', values: ['x']}]},
                  podSelector: {matchExpressions: [{key: 'pod', operator: 'In', values: ['b', 'c']}]},
                },
              ],
            },
          ],
        }),
      ],
      rows: [
        {from: 'y/b', to: 'x/a', allowed: true},
        {from: 'z/c', to: 'x/a', allowed: true},
        {from: 'y/a', to: 'x/a', allowed: false},
        {from: 'x/c', to: 'x/a', allowed: false},
      ],
    },
    {
      name: 'ports by number: only 81 allowed',
      policies: [
        np('x', 'port-81', {
          podSelector: podSel('a'),
          ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 81, protocol: 'TCP'}]}],
        }),
      ],
      rows: [
        {from: 'y/a', to: 'x/a', allowed: true, port: 81},
        {from: 'y/a', to: 'x/a', allowed: false, port: 80, why: /^port 80\/TCP is not in ports \[81\/TCP\]$/},
      ],
    },
    {
      name: 'ports by name: serve-80-tcp resolved against the destination pod',
      policies: [np('x', 'named', {podSelector: podSel('a'), ingress: [{ports: [{port: 'serve-80-tcp'}]}]})],
      rows: [
        {from: 'y/a', to: 'x/a', allowed: true, port: 80},
        {from: 'y/a', to: 'x/a', allowed: false, port: 81, why: /serve-80-tcp\(=80\)\/TCP/},
        // the name is TCP's: UDP 80 is another port
        {from: 'y/a', to: 'x/a', allowed: false, protocol: 'UDP', port: 80},
      ],
    },
    {
      name: 'a named port the destination pod does not have matches nothing',
      policies: [np('x', 'named-missing', {podSelector: podSel('a'), ingress: [{ports: [{port: 'http'}]}]})],
      rows: [{from: 'y/a', to: 'x/a', allowed: false, port: 80, why: /no such port on the destination pod/}],
    },
    {
      name: 'ingress from a namespace on one named port',
      policies: [
        np('x', 'ns-named', {
          podSelector: podSel('a'),
          ingress: [{from: [{namespaceSelector: nsSel('y')}], ports: [{port: 'serve-81-tcp'}]}],
        }),
      ],
      rows: [
        {from: 'y/b', to: 'x/a', allowed: true, port: 81},
        {from: 'y/b', to: 'x/a', allowed: false, port: 80},
        {from: 'z/b', to: 'x/a', allowed: false, port: 81},
      ],
    },
    {
      name: 'egress on one named port (resolved against the destination pod)',
      policies: [
        np('x', 'egress-named', {
          podSelector: podSel('a'),
          policyTypes: ['Egress'],
          egress: [{ports: [{port: 'serve-80-udp', protocol: 'UDP'}]}],
        }),
      ],
      rows: [
        {from: 'x/a', to: 'y/b', allowed: true, protocol: 'UDP', port: 80, by: 'x/egress-named egress[0]'},
        {
          from: 'x/a',
          to: 'y/b',
          allowed: false,
          protocol: 'TCP',
          port: 80,
          why: /port 80\/TCP is not in ports \[serve-80-udp\(=80\)\/UDP\]/,
        },
      ],
    },
    {
      name: 'endPort: a range 80-81 allows both, not 82',
      policies: [
        np('x', 'range', {podSelector: podSel('a'), ingress: [{ports: [{protocol: 'TCP', port: 80, endPort: 81}]}]}),
      ],
      rows: [
        {from: 'y/a', to: 'x/a', allowed: true, port: 80},
        {from: 'y/a', to: 'x/a', allowed: true, port: 81},
        {from: 'y/a', to: 'x/a', allowed: false, port: 82, why: /80-81\/TCP/},
      ],
    },
    {
      name: 'multiple port ranges in one rule',
      policies: [
        np('x', 'ranges', {
          podSelector: podSel('a'),
          ingress: [
            {
              ports: [
                {port: 1000, endPort: 1010},
                {port: 2000, endPort: 2010, protocol: 'UDP'},
              ],
            },
          ],
        }),
      ],
      rows: [
        {from: 'y/a', to: 'x/a', allowed: true, port: 1005},
        {from: 'y/a', to: 'x/a', allowed: false, port: 2005},
        {from: 'y/a', to: 'x/a', allowed: true, protocol: 'UDP', port: 2005},
      ],
    },
    {
      name: 'a protocol without a port: any port of that protocol',
      policies: [np('x', 'any-udp', {podSelector: podSel('a'), ingress: [{ports: [{protocol: 'UDP'}]}]})],
      rows: [
        {from: 'z/a', to: 'x/a', allowed: true, protocol: 'UDP', port: 81},
        {from: 'z/a', to: 'x/a', allowed: false, protocol: 'TCP', port: 81},
      ],
    },
    {
      name: 'a UDP-only policy does not allow TCP; the protocol defaults to TCP',
      policies: [
        np('x', 'udp-80', {podSelector: podSel('a'), ingress: [{ports: [{port: 80, protocol: 'UDP'}]}]}),
        np('x', 'tcp-81', {podSelector: podSel('b'), ingress: [{ports: [{port: 81}]}]}),
      ],
      rows: [
        {from: 'y/a', to: 'x/a', allowed: false, protocol: 'TCP', port: 80},
        {from: 'y/a', to: 'x/a', allowed: true, protocol: 'UDP', port: 80},
        {from: 'y/a', to: 'x/b', allowed: true, protocol: 'TCP', port: 81},
        {from: 'y/a', to: 'x/b', allowed: false, protocol: 'UDP', port: 81},
      ],
    },
    {
      name: 'SCTP is not TCP: a policy for SCTP 80 isolates x/a for TCP',
      policies: [np('x', 'sctp', {podSelector: podSel('a'), ingress: [{ports: [{port: 80, protocol: 'SCTP'}]}]})],
      rows: [
        {from: 'y/a', to: 'x/a', allowed: true, protocol: 'SCTP', port: 80},
        {from: 'y/a', to: 'x/a', allowed: false, protocol: 'TCP', port: 80},
      ],
    },
    {
      name: 'ICMP: a rule with ports does not allow it, a rule without does',
      policies: [
        np('x', 'tcp-only', {podSelector: podSel('a'), ingress: [{ports: [{port: 80}]}]}),
        np('x', 'all-b', {podSelector: podSel('b'), ingress: [{}]}),
      ],
      rows: [
        {from: 'y/a', to: 'x/a', allowed: false, protocol: 'ICMP', why: /ICMP \(no port\)/},
        {from: 'y/a', to: 'x/b', allowed: true, protocol: 'ICMP'},
      ],
    },
    {
      name: 'allow-all ingress (one empty rule) beside a default deny: the policies add up',
      policies: [denyIngressX, np('x', 'allow-all', {podSelector: {}, ingress: [{}]})],
      rows: [
        {from: 'z/c', to: 'x/b', allowed: true, port: 81, by: 'x/allow-all ingress[0]'},
        {from: '192.0.2.1', to: 'x/b', allowed: true},
      ],
    },
    {
      name: 'stacked policies with overlapping podSelectors: port 80 from one, 81 from the other',
      policies: [
        np('x', 'allow-80', {podSelector: podSel('a'), ingress: [{ports: [{port: 80}]}]}),
        np('x', 'allow-81', {
          podSelector: {matchExpressions: [{key: 'pod', operator: 'Exists'}]},
          ingress: [{ports: [{port: 81}]}],
        }),
      ],
      rows: [
        {from: 'y/a', to: 'x/a', allowed: true, port: 80, by: 'x/allow-80 ingress[0]'},
        {from: 'y/a', to: 'x/a', allowed: true, port: 81, by: 'x/allow-81 ingress[0]'},
        {from: 'y/a', to: 'x/b', allowed: false, port: 80},
      ],
    },
    {
      name: 'egress denied by podSelector: x/a may reach only x/b',
      policies: [
        np('x', 'a-to-b', {
          podSelector: podSel('a'),
          policyTypes: ['Egress'],
          egress: [{to: [{podSelector: podSel('b')}]}],
        }),
      ],
      rows: [
        {from: 'x/a', to: 'x/b', allowed: true},
        {from: 'x/a', to: 'x/c', allowed: false, why: /pod x\/c .* does not match podSelector/},
        {from: 'x/a', to: 'y/b', allowed: false},
        // ingress of x/a is not isolated (policyTypes say Egress only)
        {from: 'y/c', to: 'x/a', allowed: true},
      ],
    },
    {
      name: 'deny egress from all pods of a namespace',
      policies: [denyEgressX],
      rows: [
        {from: 'x/b', to: 'z/a', allowed: false},
        {from: 'z/a', to: 'x/b', allowed: true},
      ],
    },
    {
      name: "denying egress on the client wins even if the server's ingress allows it",
      policies: [
        denyEgressX,
        np('y', 'allow-from-x', {podSelector: {}, ingress: [{from: [{namespaceSelector: nsSel('x')}]}]}),
      ],
      rows: [{from: 'x/a', to: 'y/a', allowed: false, why: /no egress rule/}],
    },
    {
      name: 'egress to a server in another namespace by podSelector AND namespaceSelector',
      policies: [
        np('x', 'egress-to-y-b', {
          podSelector: podSel('a'),
          policyTypes: ['Egress'],
          egress: [{to: [{namespaceSelector: nsSel('y'), podSelector: podSel('b')}]}],
        }),
      ],
      rows: [
        {from: 'x/a', to: 'y/b', allowed: true},
        {from: 'x/a', to: 'z/b', allowed: false, why: /namespace z/},
        {from: 'x/a', to: 'y/a', allowed: false},
      ],
    },
    {
      name: 'Ingress and Egress together in one policy',
      policies: [
        np('x', 'both', {
          podSelector: podSel('a'),
          policyTypes: ['Ingress', 'Egress'],
          ingress: [{from: [{podSelector: podSel('b')}]}],
          egress: [{to: [{namespaceSelector: nsSel('y')}]}],
        }),
      ],
      rows: [
        {from: 'x/b', to: 'x/a', allowed: true},
        {from: 'x/c', to: 'x/a', allowed: false},
        {from: 'x/a', to: 'y/c', allowed: true, by: 'x/both egress[0]'},
        {from: 'x/a', to: 'x/b', allowed: false},
      ],
    },
    {
      name: 'policyTypes defaulting: egress rules without policyTypes make it Egress too; no egress rules, Ingress only',
      policies: [
        np('x', 'defaulted', {
          podSelector: podSel('a'),
          ingress: [{from: [{podSelector: podSel('b')}]}],
          egress: [{to: [{namespaceSelector: nsSel('z')}]}],
        }),
        np('x', 'ingress-only', {podSelector: podSel('c'), ingress: []}),
      ],
      rows: [
        {from: 'x/a', to: 'y/a', allowed: false, why: /namespace y/},
        {from: 'x/a', to: 'z/a', allowed: true},
        // ingress: [] and no policyTypes: Ingress, default deny; egress free
        {from: 'x/c', to: 'y/a', allowed: true},
        {from: 'y/a', to: 'x/c', allowed: false},
      ],
    },
    {
      name: 'ingress and egress controlled independently by podSelector',
      policies: [
        np('x', 'deny-egress-a', {podSelector: podSel('a'), policyTypes: ['Egress']}),
        np('x', 'deny-ingress-b', {podSelector: podSel('b'), policyTypes: ['Ingress']}),
      ],
      rows: [
        {from: 'x/a', to: 'x/c', allowed: false},
        {from: 'x/c', to: 'x/a', allowed: true},
        {from: 'x/c', to: 'x/b', allowed: false},
        {from: 'x/b', to: 'x/c', allowed: true},
      ],
    },
    {
      name: 'multiple egress policies: an allow-all egress takes precedence',
      policies: [
        np('x', 'egress-to-b', {
          podSelector: podSel('a'),
          policyTypes: ['Egress'],
          egress: [{to: [{podSelector: podSel('b')}]}],
        }),
        np('x', 'egress-all', {podSelector: podSel('a'), policyTypes: ['Egress'], egress: [{}]}),
      ],
      rows: [{from: 'x/a', to: 'z/c', allowed: true, by: 'x/egress-all egress[0]'}],
    },
    {
      name: 'egress to a server in a CIDR block (ipBlock matches pod addresses)',
      policies: [
        np('x', 'cidr', {
          podSelector: podSel('a'),
          policyTypes: ['Egress'],
          egress: [{to: [{ipBlock: {cidr: `${ip('y/b')}/32`}}]}],
        }),
      ],
      rows: [
        {from: 'x/a', to: 'y/b', allowed: true},
        {from: 'x/a', to: 'y/a', allowed: false, why: new RegExp(`${re(ip('y/a'))} is not in ipBlock`)},
      ],
    },
    {
      name: 'ipBlock except carves a hole',
      policies: [
        np('x', 'except', {
          podSelector: podSel('a'),
          policyTypes: ['Egress'],
          egress: [{to: [{ipBlock: {cidr: w.clusterCIDR, except: [w.podCIDROf('y/b')]}}]}],
        }),
      ],
      rows: [
        {from: 'x/a', to: 'y/a', allowed: true},
        {
          from: 'x/a',
          to: 'y/b',
          allowed: false,
          why: new RegExp(`is in ${re(w.podCIDROf('y/b'))}, an except of ipBlock ${re(w.clusterCIDR)}`),
        },
      ],
    },
    {
      name: 'an address in both a CIDR and an except is allowed by another peer that holds it',
      policies: [
        np('x', 'overlap', {
          podSelector: podSel('a'),
          policyTypes: ['Egress'],
          egress: [
            {
              to: [
                {ipBlock: {cidr: w.clusterCIDR, except: [w.podCIDROf('y/b')]}},
                {ipBlock: {cidr: `${ip('y/b')}/32`}},
              ],
            },
          ],
        }),
      ],
      rows: [
        {from: 'x/a', to: 'y/b', allowed: true},
        {from: 'x/a', to: 'z/b', allowed: false},
      ],
    },
    {
      name: 'ingress from outside the cluster by ipBlock',
      policies: [
        np('x', 'from-lb', {podSelector: podSel('a'), ingress: [{from: [{ipBlock: {cidr: '192.0.2.0/24'}}]}]}),
      ],
      rows: [
        {from: '192.0.2.40', to: 'x/a', allowed: true},
        {from: '198.51.100.1', to: 'x/a', allowed: false, why: /198\.51\.100\.1 is not in ipBlock 192\.0\.2\.0\/24/},
        {from: 'y/a', to: 'x/a', allowed: false},
      ],
    },
    {
      name: "a node's traffic: only an ipBlock selects it, and a pod's own node always passes",
      policies: [denyIngressX],
      rows: [
        // x/b runs on node2; node1 is another node
        {from: 'node1', to: 'x/b', allowed: false},
        {from: 'node2', to: 'x/b', allowed: true},
      ],
    },
    {
      name: 'a node is not a pod: namespaceSelector {} does not match it, an ipBlock of node addresses does',
      policies: [
        np('x', 'all-pods', {podSelector: podSel('a'), ingress: [{from: [{namespaceSelector: {}}]}]}),
        np('x', 'nodes', {podSelector: podSel('b'), ingress: [{from: [{ipBlock: {cidr: w.nodeCIDR}}]}]}),
      ],
      rows: [
        // x/a is on node1; node2 is not its node
        {
          from: 'node2',
          to: 'x/a',
          allowed: false,
          why: new RegExp(`${re(w.nodeIP('node2'))} \\(node node2\\) is matched only by an ipBlock`),
        },
        {from: 'node1', to: 'x/b', allowed: true, by: 'x/nodes ingress[0]'},
      ],
    },
    {
      name: "a host-network pod sends from its node's address: podSelector does not match it, ipBlock does",
      policies: [
        np('x', 'pods-only', {podSelector: podSel('a'), ingress: [{from: [{podSelector: {}}]}]}),
        np('y', 'by-ip', {podSelector: podSel('a'), ingress: [{from: [{ipBlock: {cidr: `${w.nodeIP('node2')}/32`}}]}]}),
      ],
      rows: [
        {
          from: 'x/hostnet',
          to: 'x/a',
          allowed: false,
          why: /host-network pod x\/hostnet .* is matched only by an ipBlock/,
        },
        {from: 'x/hostnet', to: 'y/a', allowed: true, by: 'y/by-ip ingress[0]'},
      ],
    },
    {
      name: 'a host-network pod is selected by no policy (deny-all in x does not isolate it)',
      policies: [np('x', 'deny-all', {podSelector: {}, policyTypes: ['Ingress', 'Egress']})],
      rows: [
        {from: 'y/a', to: 'x/hostnet', allowed: true},
        {from: 'x/hostnet', to: 'y/a', allowed: true},
      ],
    },
    {
      name: 'policies of another namespace never select a pod',
      policies: [np('y', 'deny-all-y', {podSelector: {}, policyTypes: ['Ingress', 'Egress']})],
      rows: [{from: 'x/a', to: 'z/a', allowed: true}],
    },
    {
      name: 'UDP ingress: an allow on UDP 81 from namespace y, none for UDP 80 or from z',
      policies: [
        np('x', 'udp-81-from-y', {
          podSelector: podSel('b'),
          ingress: [{from: [{namespaceSelector: nsSel('y')}], ports: [{protocol: 'UDP', port: 81}]}],
        }),
      ],
      rows: [
        {from: 'y/a', to: 'x/b', allowed: true, protocol: 'UDP', port: 81, by: 'x/udp-81-from-y ingress[0]'},
        {
          from: 'y/a',
          to: 'x/b',
          allowed: false,
          protocol: 'UDP',
          port: 80,
          why: /^port 80\/UDP is not in ports \[81\/UDP\]$/,
        },
        {from: 'z/a', to: 'x/b', allowed: false, protocol: 'UDP', port: 81, why: /namespace z/},
        {from: 'y/a', to: 'x/b', allowed: false, protocol: 'TCP', port: 81},
      ],
    },
    {
      name: 'UDP egress: x/c may send UDP 80 to pods b, nothing else',
      policies: [
        np('x', 'udp-out', {
          podSelector: podSel('c'),
          policyTypes: ['Egress'],
          egress: [{to: [{namespaceSelector: {}, podSelector: podSel('b')}], ports: [{protocol: 'UDP', port: 80}]}],
        }),
      ],
      rows: [
        {from: 'x/c', to: 'z/b', allowed: true, protocol: 'UDP', port: 80, by: 'x/udp-out egress[0]'},
        {
          from: 'x/c',
          to: 'z/a',
          allowed: false,
          protocol: 'UDP',
          port: 80,
          why: /pod z\/a .* does not match podSelector/,
        },
        {from: 'x/c', to: 'z/b', allowed: false, protocol: 'UDP', port: 81},
        {from: 'x/c', to: 'z/b', allowed: false, protocol: 'TCP', port: 80},
      ],
    },
    {
      name: 'the closest rule is the one with fewest mismatches, across policies',
      policies: [
        np('x', 'far', {
          podSelector: podSel('a'),
          ingress: [{from: [{namespaceSelector: nsSel('z'), podSelector: podSel('c')}], ports: [{port: 9000}]}],
        }),
        np('x', 'near', {
          podSelector: podSel('a'),
          ingress: [{from: [{namespaceSelector: nsSel('y')}], ports: [{port: 81}]}],
        }),
      ],
      rows: [{from: 'y/b', to: 'x/a', allowed: false, port: 80, why: /^port 80\/TCP is not in ports \[81\/TCP\]$/}],
    },
  ]
}
