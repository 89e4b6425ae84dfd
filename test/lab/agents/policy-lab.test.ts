/**
 * NetworkPolicies programmed as Felix does, checked against the kernel: in a
 * calico-vxlan lab with agent rules, after `lab policy apply`, a real TCP
 * connect between pods agrees with `netctl trace --lab` (DENIED / DELIVERED),
 * and a denied flow's walk names the cali- rule that dropped it.
 */
import {writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {beforeAll, expect, it} from 'vitest'

import {felixPolicyChain} from '../../../src/lab/agents/felix-policy.js'
import {netctl, netctlJson} from '../../helpers/cli.js'
import {describeLab, nsExec, useLab} from '../../helpers/lab.js'
import {useResponders} from '../../helpers/responders.js'

// ports no lab Service's responder listens on
const PORT_OPEN = 7001
const PORT_CLOSED = 7002

/** A TCP connect from a namespace, sending a line; true when the destination pod's responder answered with its name. */
async function connects(netns: string, dst: {ip: string; name: string}, port: number): Promise<boolean> {
  for (let i = 0; i < 3; i++) {
    const r = await nsExec(netns, ['sh', '-c', `echo q | nc -w 2 ${dst.ip} ${port}`], 10_000)
    if (r.stdout.trim() === dst.name) return true
  }
  return false
}

describeLab('lab policies programmed as Felix does: calico-vxlan, kube-proxy iptables', () => {
  const lab = useLab('fp-pol', [
    '--nodes',
    '2',
    '--pods-per-node',
    '2',
    '--backend',
    'calico-vxlan',
    '--proxy-mode',
    'iptables',
    '--pod-labels',
    'pod-node1-2:role=client',
  ])
  const responders = useResponders()

  beforeAll(async () => {
    const dst = lab.get().pods.find((p) => p.name === 'pod-node2-1')!
    // one responder answering on both ports: the policies below let the client in on one of them only
    await responders.start(dst.netns, dst.name, [
      {port: PORT_OPEN, protocol: 'tcp'},
      {port: PORT_CLOSED, protocol: 'tcp'},
    ])
  })

  const apply = async (yaml: string): Promise<void> => {
    const file = path.join(os.tmpdir(), `${lab.get().name}-policy.yaml`)
    await writeFile(file, yaml)
    const r = await netctl(['lab', 'policy', 'apply', '-f', file, '--lab', lab.get().name])
    expect(r.code, r.stderr).toBe(0)
  }

  const trace = (src: string, dst: string, port: number) =>
    netctlJson<{disposition: string; hops: Array<{action: string; evidence: string[]}>; policy?: {allowed: boolean}}>([
      'trace',
      src,
      dst,
      '--lab',
      lab.get().name,
      '--protocol',
      'tcp',
      '--port',
      String(port),
    ])

  async function agree(
    src: string,
    dst: string,
    port: number,
    expected: boolean,
  ): Promise<{disposition: string; hops: Array<{action: string; evidence: string[]}>}> {
    const l = lab.get()
    const s = l.pods.find((p) => p.name === src)!
    const d = l.pods.find((p) => p.name === dst)!
    const real = await connects(s.netns, d, port)
    const t = await trace(src, dst, port)
    expect(real, `${src} -> ${dst}:${port} connect`).toBe(expected)
    // the trace's policy answer (the evaluator over the lab's collected snapshot) agrees with the kernel
    expect(
      t.json.policy?.allowed ?? true,
      `${src} -> ${dst}:${port} trace policy: ${JSON.stringify(t.json.policy)}`,
    ).toBe(expected)
    if (!expected) expect(t.json.disposition).toBe('DENIED')
    return t.json
  }

  it('delivers before any policy: connect and trace agree', async () => {
    await agree('pod-node1-1', 'pod-node2-1', PORT_OPEN, true)
  })

  it('a default deny on the pod: the connect fails (the end-of-tier drop), the trace says DENIED', async () => {
    await apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-web}
spec:
  podSelector: {matchLabels: {app: pod-node2-1}}
  policyTypes: [Ingress]
`)
    await agree('pod-node1-1', 'pod-node2-1', PORT_OPEN, false)
  })

  // the walk passes Felix's raw `-m rpfilter --validmark --invert -j DROP` as the kernel does (a
  // plain reverse route lookup: a cali veth has no address to select) and reaches the tier's drop
  it('the walk of a denied flow ends at the cali-tw- end-of-tier drop, as the connect did', async () => {
    const t = await trace('pod-node1-1', 'pod-node2-1', PORT_OPEN)
    const evidence = t.json.hops.flatMap((h) => h.evidence).join('\n')
    expect(evidence).toMatch(/cali-tw-\S+ .*End of tier default\. Drop if no policies passed packet/)
  })

  it('an allow from pods with a label, on one port only: the client gets in on that port, not on another; others stay out', async () => {
    await apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client}
spec:
  podSelector: {matchLabels: {app: pod-node2-1}}
  ingress:
    - from: [{podSelector: {matchLabels: {role: client}}}]
      ports: [{port: ${PORT_OPEN}}]
`)
    await agree('pod-node1-2', 'pod-node2-1', PORT_OPEN, true)
    await agree('pod-node1-2', 'pod-node2-1', PORT_CLOSED, false)
    await agree('pod-node1-1', 'pod-node2-1', PORT_OPEN, false)
    const node2 = lab.get().nodes.find((n) => n.name === 'node2')!
    const rules = await nsExec(node2.netns, ['iptables', '-t', 'filter', '-S'])
    expect(rules.stdout).toContain(`-N ${felixPolicyChain('Ingress', 'default', 'allow-client')}`)
  })

  it("the allow names the client by Felix's selector ipset: an address taken out of it with plain ipset del is dropped by the kernel and by the walk, and both deliver again once it is back", async () => {
    const l = lab.get()
    const node2 = l.nodes.find((n) => n.name === 'node2')!
    const client = l.pods.find((p) => p.name === 'pod-node1-2')!
    const chain = felixPolicyChain('Ingress', 'default', 'allow-client')
    const rule = (await nsExec(node2.netns, ['iptables', '-t', 'filter', '-S', chain])).stdout
      .split('\n')
      .find((x) => x.includes('--match-set'))
    const set = /--match-set (cali40s:\S+) src/.exec(rule ?? '')?.[1]
    expect(set, rule).toBeDefined()
    const members = (await nsExec(node2.netns, ['ipset', 'list', set!])).stdout
    expect(members).toMatch(/^Type: hash:net$/m)
    expect(members.split('Members:')[1]!.trim().split('\n')).toEqual([client.ip])
    expect((await nsExec(node2.netns, ['ipset', 'del', set!, client.ip])).code).toBe(0)
    try {
      expect(
        await connects(
          client.netns,
          l.pods.find((p) => p.name === 'pod-node2-1')!,
          PORT_OPEN,
        ),
      ).toBe(false)
      const t = await trace('pod-node1-2', 'pod-node2-1', PORT_OPEN)
      // the API still allows it; the programmed set no longer holds the client, and the walk reads the set as the kernel does
      expect(t.json.policy?.allowed).toBe(true)
      expect(t.json.disposition).toBe('DENIED')
      expect(t.json.hops.flatMap((h) => h.evidence).join('\n')).toMatch(
        /End of tier default\. Drop if no policies passed packet/,
      )
    } finally {
      expect((await nsExec(node2.netns, ['ipset', 'add', set!, client.ip])).code).toBe(0)
    }
    await agree('pod-node1-2', 'pod-node2-1', PORT_OPEN, true)
    expect((await trace('pod-node1-2', 'pod-node2-1', PORT_OPEN)).json.disposition).toBe('DELIVERED')
  }, 300_000)

  it('check finds the faults injected with plain iptables: a policy chain jump deleted (POLICY_NOT_PROGRAMMED), a chain no policy owns (POLICY_STALE_RULES)', async () => {
    const l = lab.get()
    const node2 = l.nodes.find((n) => n.name === 'node2')!
    const clean = await netctlJson<{
      findings: Array<{code: string; node?: string; subject: string; evidence: string[]}>
    }>(['check', '--lab', l.name])
    expect(clean.json.findings.filter((f) => f.code.startsWith('POLICY_') && f.code !== 'POLICY_DENY')).toEqual([])
    // Felix lagging: the pod's cali-tw- chain no longer jumps to allow-client's chain
    const chain = felixPolicyChain('Ingress', 'default', 'allow-client')
    const tw = (await nsExec(node2.netns, ['iptables', '-t', 'filter', '-S'])).stdout
      .split('\n')
      .find((x) => x.startsWith('-A cali-tw-') && x.includes(`-j ${chain}`))!
    expect(
      (
        await nsExec(node2.netns, [
          'iptables',
          '-t',
          'filter',
          ...tw
            .replace(/^-A /, '-D ')
            .split(' ')
            .map((w) => w.replace(/^"|"$/g, '')),
        ])
      ).code,
    ).toBe(0)
    // a deleted policy's chain left behind
    expect((await nsExec(node2.netns, ['iptables', '-t', 'filter', '-N', 'cali-pi-knp/default/gone'])).code).toBe(0)
    const r = await netctlJson<{findings: Array<{code: string; node?: string; subject: string; evidence: string[]}>}>([
      'check',
      '--lab',
      l.name,
    ])
    const notProgrammed = r.json.findings.filter((f) => f.code === 'POLICY_NOT_PROGRAMMED')
    expect(notProgrammed.map((f) => [f.node, f.subject])).toEqual([['node2', 'NetworkPolicy default/allow-client']])
    expect(notProgrammed[0]!.evidence.join('\n')).toContain(`no cali-tw-<iface> chain jumps to ${chain}`)
    const stale = r.json.findings.filter((f) => f.code === 'POLICY_STALE_RULES')
    expect(stale.map((f) => [f.node, f.subject])).toEqual([['node2', 'chain cali-pi-knp/default/gone']])
    // the lab puts it right again: apply reprograms and removes the stray chain
    await apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client}
spec:
  podSelector: {matchLabels: {app: pod-node2-1}}
  ingress:
    - from: [{podSelector: {matchLabels: {role: client}}}]
      ports: [{port: ${PORT_OPEN}}]
`)
    const after = await netctlJson<{findings: Array<{code: string}>}>(['check', '--lab', l.name])
    expect(
      after.json.findings.filter((f) => f.code === 'POLICY_NOT_PROGRAMMED' || f.code === 'POLICY_STALE_RULES'),
    ).toEqual([])
  })

  it('lab policy delete reprograms: the chain goes, the pod answers again', async () => {
    const l = lab.get()
    for (const name of ['allow-client', 'deny-web'])
      expect((await netctl(['lab', 'policy', 'delete', name, '--lab', l.name])).code).toBe(0)
    const node2 = l.nodes.find((n) => n.name === 'node2')!
    const rules = await nsExec(node2.netns, ['iptables', '-t', 'filter', '-S'])
    expect(rules.stdout).not.toMatch(/cali-p[io]-/)
    await agree('pod-node1-1', 'pod-node2-1', PORT_OPEN, true)
  })

  it('the walk delivers what the kernel delivers once the policy is gone', async () => {
    expect((await trace('pod-node1-1', 'pod-node2-1', PORT_OPEN)).json.disposition).toBe('DELIVERED')
  })
})
