import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'

import type {Inventory} from '../../src/model/inventory.js'
import {validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {describeLab, type LabUp, useLab} from '../helpers/lab.js'

type SshLab = LabUp & {ssh: {config: string; knownHosts: string; identity: string}}

describeLab(
  'exit codes with one node of a lab not collected: collect and backend get say which and why, exit 3',
  () => {
    const lab = useLab('ex', ['--nodes', '3', '--pods-per-node', '1', '--ssh'])
    let tmp = ''
    /** the lab's inventory, reached over ssh, with node2's known_hosts line holding node3's key */
    let hostKeyChanged = ''
    /** the lab's inventory, through namespaces, with node3's namespace gone */
    let node3Gone = ''

    beforeAll(() => {
      tmp = mkdtempSync(path.join(tmpdir(), 'ex-lab-'))
      const l = lab.get() as SshLab
      const lines = readFileSync(l.ssh.knownHosts, 'utf8').trim().split('\n')
      const other = lines
        .find((x) => x.startsWith('node3,'))!
        .split(' ')
        .slice(1)
        .join(' ')
      const knownHosts = path.join(tmp, 'known_hosts_changed')
      writeFileSync(
        knownHosts,
        `${lines.map((x) => (x.startsWith('node2,') ? `${x.split(' ')[0]} ${other}` : x)).join('\n')}\n`,
      )

      const inv = parse(readFileSync(l.inventory, 'utf8')) as Inventory
      const viaSsh = structuredClone(inv)
      for (const n of viaSsh.nodes) {
        delete n.access.netns
        if (n.name === 'node2') n.access.ssh!.knownHostsFile = knownHosts
      }
      hostKeyChanged = path.join(tmp, 'hostkey.yaml')
      writeFileSync(hostKeyChanged, stringify(viaSsh))

      const gone = structuredClone(inv)
      gone.nodes.find((n) => n.name === 'node3')!.access.netns = `${l.name}.gone`
      node3Gone = path.join(tmp, 'gone.yaml')
      writeFileSync(node3Gone, stringify(gone))
    })
    afterAll(() => {
      if (tmp) rmSync(tmp, {recursive: true, force: true})
    })

    it('collect: a changed host key on node2 is named on stderr in one line, exit 3, node1 and node3 still written', async () => {
      const out = path.join(tmp, 'snap.json')
      const r = await netctl(['collect', '--inventory', hostKeyChanged, '--output-file', out, '--timeout', '10'])
      expect(r.code, r.stderr).toBe(3)
      const lines = r.stderr.trimEnd().split('\n')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^netctl: 1 of 3 nodes could not be collected: node2: /)
      expect(lines[0]).toContain('host key changed')
      const snap = JSON.parse(readFileSync(out, 'utf8'))
      expect(validatorFor('snapshot')(snap)).toBe(true)
      expect(Object.keys(snap.nodeStates).sort()).toEqual(['node1', 'node3'])
      expect(snap.errors).toMatchObject([{node: 'node2', code: 'NODE_UNREACHABLE'}])
      expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([])

      const j = await netctlJson(['collect', '--inventory', hostKeyChanged, '--output-file', out, '--timeout', '10'])
      expect(j.code).toBe(3)
      expect(validatorFor('collect-summary')(j.json)).toBe(true)
      expect(j.json).toMatchObject({nodes: 3, collected: 2, unreachable: 1, written: true})
    })

    it('backend get: a changed host key on node2 is exit 3, named with why on stderr; the other nodes still shown', async () => {
      const r = await netctl(['backend', 'get', '--inventory', hostKeyChanged, '--timeout', '10'])
      expect(r.code, r.stderr).toBe(3)
      const lines = r.stderr.trimEnd().split('\n')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^netctl: 1 of 3 nodes could not be collected: node2: /)
      expect(lines[0]).toContain('host key changed')
      expect(r.stdout).toMatch(/^node1 +flannel-vxlan\b/m)
      const j = await netctlJson(['backend', 'get', '--inventory', hostKeyChanged, '--timeout', '10'])
      expect(j.code).toBe(3)
      expect(validatorFor('backend-get')(j.json)).toBe(true)
    })

    it('backend get: a node that does not answer is exit 3, named with why on stderr', async () => {
      const l = lab.get()
      const r = await netctl(['backend', 'get', '--inventory', node3Gone, '--timeout', '5'])
      expect(r.code, r.stderr).toBe(3)
      expect(r.stderr).toBe(
        `netctl: 1 of 3 nodes could not be collected: node3: netns ${l.name}.gone: no such network namespace\n`,
      )
      expect((await netctlJson(['backend', 'get', '--inventory', node3Gone, '--timeout', '5'])).code).toBe(3)
    })
  },
)
