/**
 * `netctl lab policy apply | delete | list` on a lab's record, run as a user
 * runs them. The lab is only recorded (planLab + its record under a temporary
 * NETCTL_STATE_DIR): these commands touch files, never namespaces.
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {currentHolder, FileLock} from '../../src/backend/act/lock.js'
import {parseInventory} from '../../src/cluster/inventory.js'
import {writeInventory} from '../../src/lab/inventory.js'
import {saveRecord} from '../../src/lab/state.js'
import {planLab} from '../../src/lab/topology.js'
import type {LabRecord} from '../../src/lab/types.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {BIN, netctl, netctlJson} from '../helpers/cli.js'

const root = mkdtempSync(path.join(tmpdir(), 'po-lab-policy-'))
afterAll(() => rmSync(root, {recursive: true, force: true}))
const env = {NETCTL_STATE_DIR: root}

async function recordedLab(name: string, backend: 'calico-bgp' | 'flannel-vxlan'): Promise<LabRecord> {
  // a record with no namespaces behind it: no agents' rules, so nothing is programmed into nodes that are not there
  const plan = planLab(
    {name, nodes: 2, podsPerNode: 2, backend, topology: 'flat', routeReflectors: 1, ssh: false, proxyMode: 'none'},
    root,
  )
  const record: LabRecord = {
    ...plan,
    status: 'up',
    createdAt: new Date().toISOString(),
    warnings: [],
    notes: [],
    version: 'test',
  }
  await saveRecord(record)
  await writeInventory(record)
  return record
}

const POLICIES = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web, namespace: default}
spec:
  podSelector: {matchLabels: {app: pod-node2-1}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: pod-node1-1}}}]
      ports: [{port: 80}]
`

function valid(json: unknown): void {
  const validate = validatorFor('lab-policy')
  expect(validate(json), describeSchemaError(validate.errors)).toBe(true)
}

describe('netctl lab policy', () => {
  it("apply records the policies in the lab's inventory (created, then unchanged / configured); list shows them; delete removes one", async () => {
    const lab = await recordedLab('po-rec', 'calico-bgp')
    const file = path.join(root, 'policies.yaml')
    writeFileSync(file, POLICIES)
    const first = await netctlJson(['lab', 'policy', 'apply', '-f', file, '--lab', lab.name], {env})
    valid(first.json)
    expect(first.code).toBe(0)
    expect(first.json.applied).toEqual([
      {namespace: 'default', name: 'default-deny-ingress', result: 'created'},
      {namespace: 'default', name: 'allow-web', result: 'created'},
    ])
    expect(first.json.enforced).toBe(true)
    const inv = parseInventory(readFileSync(lab.inventory, 'utf8'), lab.inventory)
    expect(inv.networkPolicies?.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual([
      'default/default-deny-ingress',
      'default/allow-web',
    ])
    expect(inv.pods.find((p) => p.name === 'pod-node2-1')!.labels).toEqual({app: 'pod-node2-1'})

    writeFileSync(file, POLICIES.replace('port: 80', 'port: 8080'))
    const again = await netctlJson(['lab', 'policy', 'apply', '-f', file, '--lab', lab.name], {env})
    expect(again.json.applied.map((a: {result: string}) => a.result)).toEqual(['unchanged', 'configured'])

    const text = await netctl(['lab', 'policy', 'list', '--lab', lab.name], {env})
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/default\s+allow-web\s+\{"matchLabels":\{"app":"pod-node2-1"\}\}\s+\(defaulted\)/)

    const del = await netctlJson(['lab', 'policy', 'delete', 'allow-web', '-n', 'default', '--lab', lab.name], {env})
    valid(del.json)
    expect(del.json.policies.map((p: {name: string}) => p.name)).toEqual(['default-deny-ingress'])
    const gone = await netctl(['lab', 'policy', 'delete', 'allow-web', '--lab', lab.name], {env})
    expect(gone.code).toBe(2)
    expect(gone.stderr.trim().split('\n')).toHaveLength(1)
    expect(gone.stderr).toContain(`lab ${lab.name} has no NetworkPolicy default/allow-web`)
  })

  it('refuses what is not a NetworkPolicy, in one line, and changes nothing', async () => {
    const lab = await recordedLab('po-bad', 'flannel-vxlan')
    const file = path.join(root, 'bad.yaml')
    writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: web}\n')
    const r = await netctl(['lab', 'policy', 'apply', '-f', file, '--lab', lab.name], {env})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/document 1: kind "Service": only NetworkPolicy/)
    const list = await netctlJson(['lab', 'policy', 'list', '--lab', lab.name], {env})
    expect(list.json).toEqual({lab: lab.name, policies: [], enforced: false})
  })

  it("apply and delete take the lab's change lock: refused while another run holds it (exit 4, naming the holder), waiting with --lock-timeout; concurrent applies both land", async () => {
    const lab = await recordedLab('po-lock', 'calico-bgp')
    const file = path.join(root, 'lock.yaml')
    writeFileSync(file, POLICIES)
    // another run (this process) is changing the lab, as backend set would
    const held = new FileLock(
      path.join(lab.stateDir, 'change.lock'),
      `lab ${lab.name}`,
      currentHolder('backend set calico-vxlan'),
    )
    expect((await held.tryAcquire()).ok).toBe(true)
    const refused = await netctl(['lab', 'policy', 'apply', '-f', file, '--lab', lab.name], {env})
    expect(refused.code, refused.stderr).toBe(4)
    expect(refused.stderr.trim().split('\n')).toHaveLength(1)
    expect(refused.stderr).toContain(`refused: lab ${lab.name} is being changed by`)
    expect(refused.stderr).toContain('backend set calico-vxlan')
    const del = await netctl(['lab', 'policy', 'delete', 'allow-web', '--lab', lab.name], {env})
    expect(del.code, del.stderr).toBe(4)
    expect((await netctlJson(['lab', 'policy', 'list', '--lab', lab.name], {env})).json.policies).toEqual([])
    // with --lock-timeout it waits for the holder to let go (let go once it says it waits), then applies
    const waiter = spawn(
      process.execPath,
      [BIN, 'lab', 'policy', 'apply', '-f', file, '--lab', lab.name, '--lock-timeout', '2m'],
      {env: {...process.env, ...env}, stdio: ['ignore', 'ignore', 'pipe']},
    )
    let said = ''
    waiter.stderr.on('data', (d: Buffer) => {
      said += d.toString()
      if (said.includes('waiting up to 2m for')) void held.release()
    })
    const code = await new Promise<number | null>((resolve) => waiter.on('close', resolve))
    expect(code, said).toBe(0)
    expect(said).toMatch(
      new RegExp(`waiting up to 2m for \\S+ \\(pid ${process.pid}, netctl backend set calico-vxlan\\)`),
    )

    // two runs at once, each with its own policy: under the lock neither read-modify-write loses the other's
    const files = ['one', 'two', 'three'].map((n) => {
      const f = path.join(root, `lock-${n}.yaml`)
      writeFileSync(
        f,
        `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p-${n}}\nspec: {podSelector: {}}\n`,
      )
      return f
    })
    const runs = await Promise.all(
      files.map((f) => netctl(['lab', 'policy', 'apply', '-f', f, '--lab', lab.name, '--lock-timeout', '60s'], {env})),
    )
    for (const r of runs) expect(r.code, r.stderr).toBe(0)
    const names = (await netctlJson(['lab', 'policy', 'list', '--lab', lab.name], {env})).json.policies.map(
      (p: {name: string}) => p.name,
    )
    expect(names.sort()).toEqual(['allow-web', 'default-deny-ingress', 'p-one', 'p-three', 'p-two'])
  })
})
