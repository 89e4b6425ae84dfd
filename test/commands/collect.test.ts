import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {labInventory} from '../../src/lab/inventory.js'
import {planLab} from '../../src/lab/topology.js'
import {validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson, REPO} from '../helpers/cli.js'

const dir = mkdtempSync(path.join(tmpdir(), 'col-cmd-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))
/** An inventory of a lab that does not exist: every node's namespace is missing. */
function ghostInventory(): string {
  const plan = planLab(
    {
      name: 'col-ghost-x9',
      nodes: 2,
      podsPerNode: 1,
      backend: 'flannel-vxlan',
      topology: 'flat',
      routeReflectors: 1,
      ssh: false,
    },
    dir,
  )
  const file = path.join(dir, 'ghost.yaml')
  writeFileSync(file, stringify(labInventory(plan)))
  return file
}

describe('netctl collect (no cluster needed)', () => {
  it('no node reachable: exit 3, one line on stderr; a good snapshot already in FILE stays byte for byte, no temporary file left', async () => {
    const out = path.join(dir, 'kept', 'snap.json')
    mkdirSync(path.dirname(out))
    const good = readFileSync(path.join(REPO, 'fixtures', 'snapshots', 'flannel-vxlan-lab.json'))
    writeFileSync(out, good)
    const r = await netctl(['collect', '--inventory', ghostInventory(), '--output-file', out, '--timeout', '2'])
    expect(r.code).toBe(3)
    expect(r.stdout).toBe('')
    expect(r.stderr.trim().split('\n')).toEqual([
      'netctl: no node could be collected (2 unreachable): node1: netns col-ghost-x9.node1: no such network namespace',
    ])
    expect(readFileSync(out).equals(good)).toBe(true)
    expect(readdirSync(path.dirname(out))).toEqual(['snap.json'])
  })

  it('no node reachable and no FILE yet: none is made', async () => {
    const out = path.join(dir, 'none', 'snap.json')
    mkdirSync(path.dirname(out))
    const r = await netctl(['collect', '--inventory', ghostInventory(), '--output-file', out, '--timeout', '2'])
    expect(r.code).toBe(3)
    expect(readdirSync(path.dirname(out))).toEqual([])
  })

  it('--json with -o prints the summary (its schema), written: false, exit 3 all the same', async () => {
    const r = await netctlJson(['collect', '--inventory', ghostInventory(), '--output-file', path.join(dir, 'g2.json')])
    expect(r.code).toBe(3)
    expect(validatorFor('collect-summary')(r.json)).toBe(true)
    expect(r.json).toMatchObject({nodes: 2, collected: 0, unreachable: 2, written: false})
    expect(existsSync(path.join(dir, 'g2.json'))).toBe(false)
  })

  it('an -o FILE that cannot be written: exit 2 in one line before any node is read, with --json the error object', async () => {
    const out = path.join(dir, 'no-such-dir', 'snap.json')
    const r = await netctl(['collect', '--inventory', ghostInventory(), '--output-file', out])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(`netctl: cannot write ${out}: no such directory ${path.dirname(out)}\n`)
    const j = await netctlJson(['collect', '--inventory', ghostInventory(), '--output-file', out])
    expect(j.code).toBe(2)
    expect(j.json).toEqual({
      error: {code: 'ENVIRONMENT', message: `cannot write ${out}: no such directory ${path.dirname(out)}`, exitCode: 2},
    })
  })

  it.each([
    // nothing named and no kubeconfig (HOME below has none): Kubernetes cannot be found either
    [[], /^netctl: no Kubernetes config: .*; or name a lab \(--lab NAME\) or an inventory file \(--inventory FILE\)$/],
    [['--lab', 'a', '--inventory', 'b'], 'netctl: --lab and --inventory name two different clusters: give one'],
    [['--inventory', '/nonexistent/inv.yaml'], 'netctl: /nonexistent/inv.yaml: no such file'],
    [['--lab', 'col-no-such-lab'], "netctl: no lab named 'col-no-such-lab' (see netctl lab list)"],
    [
      ['--inventory', 'x', '--parallel', '0'],
      'netctl: --parallel: Expected an integer greater than or equal to 1 but received: 0',
    ],
  ])('usage problems exit 2 with one line: %j', async (args, message) => {
    const r = await netctl(['collect', ...args], {env: {HOME: '/nonexistent', KUBECONFIG: ''}})
    expect(r.code).toBe(2)
    const [first] = r.stderr.split('\n')
    if (typeof message === 'string') expect(first).toBe(message)
    else expect(first).toMatch(message)
  })

  it('a malformed inventory: exit 2, the field named', async () => {
    const file = path.join(dir, 'bad.yaml')
    writeFileSync(file, readFileSync(ghostInventory(), 'utf8').replace('podCIDR: 172.20.2.0/24', 'podCIDR: 172.20.2.0'))
    const r = await netctl(['collect', '--inventory', file])
    expect(r.code).toBe(2)
    expect(r.stderr.split('\n')[0]).toBe(`netctl: ${file}: nodes[1].podCIDR: must be a CIDR like 10.244.1.0/24`)
  })
})
