/**
 * `netctl lab policy apply | delete | list` on a lab's record, run as a user
 * runs them. The lab is only recorded (planLab + its record under a temporary
 * NETCTL_STATE_DIR): these commands touch files, never namespaces.
 */
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {parseInventory} from '../../src/cluster/inventory.js'
import {writeInventory} from '../../src/lab/inventory.js'
import {saveRecord} from '../../src/lab/state.js'
import {planLab} from '../../src/lab/topology.js'
import type {LabRecord} from '../../src/lab/types.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'

const root = mkdtempSync(path.join(tmpdir(), 'po-lab-policy-'))
afterAll(() => rmSync(root, {recursive: true, force: true}))
const env = {NETCTL_STATE_DIR: root}

async function recordedLab(name: string, backend: 'calico-bgp' | 'flannel-vxlan'): Promise<LabRecord> {
  // a record with no namespaces behind it: no agents' rules, so nothing is programmed into nodes that are not there
  const plan = planLab({name, nodes: 2, podsPerNode: 2, backend, topology: 'flat', routeReflectors: 1, ssh: false, proxyMode: 'none'}, root)
  const record: LabRecord = {...plan, status: 'up', createdAt: new Date().toISOString(), warnings: [], notes: [], version: 'test'}
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
  it('apply records the policies in the lab\'s inventory (created, then unchanged / configured); list shows them; delete removes one', async () => {
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
    expect(inv.networkPolicies?.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual(['default/default-deny-ingress', 'default/allow-web'])
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
})
