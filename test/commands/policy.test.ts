/**
 * NetworkPolicy verdicts as a user gets them: `netctl trace` and `netctl check`
 * on a saved snapshot of the recorded Calico lab, with its pods labelled and
 * policies added as an inventory's networkPolicies: would give them.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import type {Finding} from '../../src/model/finding.js'
import type {Trace} from '../../src/model/trace.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {snapshotFixture} from '../helpers/fixtures.js'

const dir = mkdtempSync(path.join(tmpdir(), 'po-policy-cmd-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

function snapshotWith(cni: string): string {
  const s = snapshotFixture('calico-bgp-lab')
  s.cluster.cni = cni
  s.pods = s.pods.map((p) => ({
    ...p,
    labels: {app: p.name},
    ...(p.name === 'pod-node2-1' ? {ports: [{name: 'http', containerPort: 8080, protocol: 'TCP' as const}]} : {}),
  }))
  s.networkPolicies = [
    {namespace: 'default', name: 'default-deny-ingress', spec: {podSelector: {}, policyTypes: ['Ingress']}},
    {
      namespace: 'default',
      name: 'web-from-client',
      spec: {
        podSelector: {matchLabels: {app: 'pod-node2-1'}},
        ingress: [{from: [{podSelector: {matchLabels: {app: 'pod-node1-1'}}}], ports: [{port: 'http'}]}],
      },
    },
  ]
  const file = path.join(dir, `${cni}.json`)
  writeFileSync(file, JSON.stringify(s))
  return file
}

describe("netctl trace: the NetworkPolicies' answer", () => {
  it('calico: a port the policy does not open is DENIED, exit 1, the policy and the port named; the named port is open', async () => {
    const snap = snapshotWith('calico')
    const denied = await netctlJson<Trace>([
      'trace',
      'pod-node1-1',
      'pod-node2-1',
      '-p',
      'tcp',
      '--port',
      '80',
      '--snapshot',
      snap,
    ])
    const validate = validatorFor('trace')
    expect(validate(denied.json), describeSchemaError(validate.errors)).toBe(true)
    expect(denied.code).toBe(1)
    expect(denied.json.disposition).toBe('DENIED')
    const finding = denied.json.findings.find((f) => f.code === 'POLICY_DENY')!
    expect(finding.message).toContain(
      'default/default-deny-ingress, default/web-from-client select pod default/pod-node2-1 for Ingress',
    )
    expect(finding.message).toContain('port 80/TCP is not in ports [http(=8080)/TCP]')
    const open = await netctlJson<Trace>([
      'trace',
      'pod-node1-1',
      'pod-node2-1',
      '-p',
      'tcp',
      '--port',
      '8080',
      '--snapshot',
      snap,
    ])
    expect(open.json.disposition).toBe('DELIVERED')
    expect(open.json.policy?.ingress.allowedBy).toEqual({
      policy: 'default/web-from-client',
      direction: 'Ingress',
      rule: 0,
    })
    expect(open.code).toBe(0)
    const text = await netctl(['trace', 'pod-node1-1', 'pod-node2-1', '-p', 'tcp', '--port', '80', '--snapshot', snap])
    expect(text.stdout).toMatch(/drop {2}\[POLICY_DENY\]/)
    expect(text.stdout).toContain('(netctl explain POLICY_DENY)')
  })

  it('flannel: DELIVERED, and POLICY_UNENFORCED says what the policies would do', async () => {
    const r = await netctlJson<Trace>([
      'trace',
      'pod-node1-1',
      'pod-node2-1',
      '-p',
      'tcp',
      '--port',
      '80',
      '--snapshot',
      snapshotWith('flannel'),
    ])
    expect(r.json.disposition).toBe('DELIVERED')
    expect(r.json.policy).toMatchObject({enforced: false, allowed: false})
    const messages = r.json.findings.filter((f) => f.code === 'POLICY_UNENFORCED').map((f) => f.message)
    expect(messages).toHaveLength(2)
    expect(
      messages.every((m) =>
        m.includes('enforced, this flow would be denied by default/default-deny-ingress, default/web-from-client'),
      ),
    ).toBe(true)
  })
})

describe('netctl check: pods a default deny isolates from every pod', () => {
  it('one POLICY_DENY warning for the default deny, naming the 5 pods nothing opens (not pod-node2-1)', async () => {
    const r = await netctlJson<{findings: Finding[]}>(['check', '--snapshot', snapshotWith('calico')])
    const deny = r.json.findings.filter((f) => f.code === 'POLICY_DENY')
    expect(deny).toHaveLength(1)
    expect(deny[0]).toMatchObject({severity: 'warning', subject: 'NetworkPolicy default/default-deny-ingress'})
    expect(deny[0]!.evidence).toContain(
      'isolated: default/pod-node1-1, default/pod-node1-2, default/pod-node2-2, default/pod-node3-1, default/pod-node3-2',
    )
  })
})
