import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {Config} from '@oclif/core'
import {afterAll, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {labInventory} from '../../src/lab/inventory.js'
import {planLab} from '../../src/lab/topology.js'
import {netctl, REPO} from '../helpers/cli.js'

// kubectl's conventions across every command (issue 12): -o FORMAT, -n only for
// Kubernetes namespaces, --lab on every lab command, -f for the input file,
// --context/--kubeconfig wherever a cluster is read.
const dir = mkdtempSync(path.join(tmpdir(), 'fl-conv-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))
const snap = path.join(REPO, 'fixtures', 'snapshots', 'flannel-vxlan-lab.json')

/** Commands that read a cluster (a --lab/--inventory/Kubernetes source). */
const CLUSTER_READERS = ['trace', 'check', 'collect', 'backend:get', 'backend:plan', 'backend:set', 'debug:cleanup']

describe('every command follows the conventions', () => {
  it('help shows -o, --lab on lab commands, --context/--kubeconfig where a cluster is read, and -n only as a namespace', async () => {
    const config = await Config.load(REPO)
    const ids = config.commands.filter((c) => c.pluginName === 'netctl').map((c) => c.id) // netctl's own, not the plugins' (help, autocomplete)
    expect(ids).toEqual(
      expect.arrayContaining([
        ...CLUSTER_READERS,
        'explain',
        'lab:up',
        'lab:down',
        'lab:status',
        'lab:list',
        'lab:bench',
      ]),
    )
    for (const id of ids) {
      const r = await netctl([...id.split(':'), '--help'], {env: {COLUMNS: '200'}})
      expect(r.code, id).toBe(0)
      expect(r.stdout, `${id}: -o`).toMatch(/-o, --output=FORMAT/)
      expect(r.stdout, `${id}: --json`).toContain('--json')
      if (id.startsWith('lab:')) expect(r.stdout, `${id}: --lab`).toMatch(/--lab=NAME/)
      if (CLUSTER_READERS.includes(id)) {
        expect(r.stdout, `${id}: --context`).toContain('--context=')
        expect(r.stdout, `${id}: --kubeconfig`).toContain('--kubeconfig=')
      }
      // -n, wherever it is, is --namespace
      const n = r.stdout.match(/^\s+-n, --(\S+?)=/m)
      if (n) expect(n[1], `${id}: -n`).toBe('namespace')
      else expect(r.stdout, id).not.toMatch(/^\s+-n,/m)
    }
  })
})

/** Each command's result as --json prints it, and as -o json / -o yaml print it. */
const RESULTS: Array<[string, string[]]> = [
  ['explain', ['explain', 'FDB_MISSING']],
  ['explain --list', ['explain', '--list']],
  ['check', ['check', '--snapshot', snap]],
  ['trace', ['trace', 'pod-node1-1', 'pod-node3-2', '--snapshot', snap]],
  ['lab list', ['lab', 'list', '--lab', 'fl-no-such-lab']],
  ['a usage error', ['check', '--snapshot', path.join(dir, 'missing.json')]],
]

describe('-o json is --json, -o yaml the same object', () => {
  it.each(RESULTS)('%s', async (_, args) => {
    const json = await netctl([...args, '--json'])
    const o = await netctl([...args, '-o', 'json'])
    expect(o.stdout).toBe(json.stdout)
    expect(o.code).toBe(json.code)
    const y = await netctl([...args, '-o', 'yaml'])
    expect(y.code).toBe(json.code)
    expect(parse(y.stdout)).toEqual(JSON.parse(json.stdout))
    expect(y.stdout.trimStart()).not.toMatch(/^[{[]/) // YAML, not JSON (which is YAML too)
  })

  it('--json with another format is a usage error', async () => {
    const r = await netctl(['trace', 'a', 'b', '--snapshot', snap, '--json', '-o', 'yaml'])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout).error.message).toBe('--json and -o yaml ask for two outputs: give one')
  })
})

describe('old spellings still work', () => {
  it('check -s FILE and -f FILE and --filename FILE are --snapshot FILE', async () => {
    const want = await netctl(['check', '--snapshot', snap])
    for (const flag of ['-s', '-f', '--filename']) {
      const r = await netctl(['check', flag, snap])
      expect(r.stdout, flag).toBe(want.stdout)
    }
    const t = await netctl(['trace', 'pod-node1-1', 'pod-node3-2', '-f', snap])
    expect(t.stdout).toBe((await netctl(['trace', 'pod-node1-1', 'pod-node3-2', '--snapshot', snap])).stdout)
  })

  it('lab commands: --name is --lab; -n says what it has become', async () => {
    const byName = await netctl(['lab', 'list', '--name', 'fl-no-such-lab', '--json'])
    expect(byName.code).toBe(0)
    expect(JSON.parse(byName.stdout)).toEqual({labs: []})
    const n = await netctl(['lab', 'status', '-n', 'demo'])
    expect(n.code).toBe(2)
    expect(n.stderr.split('\n')[0]).toBe(
      'netctl: Nonexistent flag: -n: the lab is --lab NAME (also --name); -n is a Kubernetes namespace, as in kubectl',
    )
  })

  it('collect -o FILE is --output-file FILE, with a deprecation line', async () => {
    const plan = planLab(
      {
        name: 'fl-ghost-c1',
        nodes: 2,
        podsPerNode: 1,
        backend: 'flannel-vxlan',
        topology: 'flat',
        routeReflectors: 1,
        ssh: false,
      },
      dir,
    )
    const inv = path.join(dir, 'ghost.yaml')
    writeFileSync(inv, stringify(labInventory(plan)))
    const out = path.join(dir, 'old.json')
    const old = await netctl(['collect', '--inventory', inv, '-o', out, '--timeout', '2'])
    expect(old.code).toBe(3) // no node reachable: the file flag was taken, not refused as a bad format
    expect(old.stderr.split('\n')[0]).toBe(
      'netctl: -o FILE is deprecated for collect: use --output-file FILE (-o is the output format, as in kubectl)',
    )
    const both = await netctl(['collect', '--inventory', inv, '-o', out, '--output-file', out])
    expect(both.code).toBe(2)
    // with --json the old spelling still gives the summary of what was (not) written
    const j = await netctl(['collect', '--inventory', inv, '-o', out, '--timeout', '2', '--json'])
    expect(JSON.parse(j.stdout)).toMatchObject({output: out, written: false})
  })
})

describe('a shared flag means the same in every command', () => {
  it('--lock-timeout: every command that takes the change lock refuses a value that is not a duration, in one line, exit 2, before reaching anything', async () => {
    const policy = path.join(dir, 'policy.yaml')
    writeFileSync(policy, 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\nspec: {}\n')
    const commands = [
      ['backend', 'set', 'flannel-host-gw', '--lab', 'hz-nosuchlab', '--yes'],
      ['lab', 'policy', 'apply', '-f', policy, '--lab', 'hz-nosuchlab'],
      ['lab', 'policy', 'delete', 'deny', '--lab', 'hz-nosuchlab'],
    ]
    for (const argv of commands) {
      const r = await netctl([...argv, '--lock-timeout', 'soon'])
      expect(r.code, argv.join(' ')).toBe(2)
      expect(r.stderr.split('\n')[0], argv.join(' ')).toBe(
        'netctl: --lock-timeout: soon: expected a duration such as 0, 30s, 5m or 1h',
      )
    }
  })
})
