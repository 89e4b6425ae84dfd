import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {ERROR_CLASSES, type ErrorClass} from '../../src/errors.js'
import {labInventory} from '../../src/lab/inventory.js'
import {planLab} from '../../src/lab/topology.js'
import {validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson, REPO} from '../helpers/cli.js'
import {snapshotFixturePath} from '../helpers/fixtures.js'
import {labSkipReason, uniqueLabName} from '../helpers/lab.js'

const dir = mkdtempSync(path.join(tmpdir(), 'ex-codes-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))
const file = (name: string, text: string): string => {
  const f = path.join(dir, name)
  writeFileSync(f, text)
  return f
}
const snap = (name: string): string => snapshotFixturePath(`${name}-lab`)

/** An inventory of a lab that does not exist: every node's namespace is missing. */
const ghost = file(
  'ghost.yaml',
  stringify(
    labInventory(
      planLab(
        {
          name: 'ex-ghost-q7',
          nodes: 2,
          podsPerNode: 1,
          backend: 'flannel-vxlan',
          topology: 'flat',
          routeReflectors: 1,
          ssh: false,
        },
        dir,
      ),
    ),
  ),
)
const ghostLine =
  'no node could be collected (2 unreachable): node1: netns ex-ghost-q7.node1: no such network namespace'

/** "billion laughs": nine levels of ten aliases each. */
function aliasBomb(): string {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]']
  for (let i = 1; i < 9; i++) lines.push(`a${i}: &a${i} [${Array.from({length: 10}, () => `*a${i - 1}`).join(', ')}]`)
  return `${lines.join('\n')}\n`
}
const bomb = file('bomb.yaml', aliasBomb())

/** A recorded snapshot with one IPv6 pod beside the IPv4 ones. */
const v6 = (() => {
  const s = JSON.parse(readFileSync(snap('flannel-vxlan'), 'utf8'))
  s.pods.push({name: 'web-v6', namespace: 'default', node: 'node3', ip: 'fd00:10:244:3::5'})
  return file('v6.json', JSON.stringify(s))
})()

/** A recorded snapshot with one fault: ip_forward off on node2. */
const forwardingOff = (() => {
  const s = JSON.parse(readFileSync(snap('flannel-vxlan'), 'utf8'))
  s.nodeStates.node2.sysctls['net.ipv4.ip_forward'] = '0'
  return file('fwd-off.json', JSON.stringify(s))
})()

/** A state directory with a lab whose record is broken, and one whose name is taken (a directory, no namespace). */
const stateDir = path.join(dir, 'state')
mkdirSync(path.join(stateDir, 'ex-broken'), {recursive: true})
writeFileSync(path.join(stateDir, 'ex-broken', 'lab.json'), '{"name": "ex-broken", ')
const takenLab = uniqueLabName('ex-taken')
mkdirSync(path.join(stateDir, takenLab), {recursive: true})

interface Row {
  what: string
  args: string[]
  env?: NodeJS.ProcessEnv
  /** an error: its line on stderr (without "netctl: ") and its JSON error code when not the class's own */
  error?: string | RegExp
  code?: string
  /** a result that means this exit: the line on stderr (text only), and the schema its JSON follows */
  result?: {line?: string; schema?: string}
}

/** At least one command per row of the table, run as a user runs it. */
const ROWS: Record<ErrorClass, Row[]> = {
  fault: [{what: 'check finds an error', args: ['check', '--snapshot', forwardingOff], result: {schema: 'check'}}],
  failed: [
    {
      what: 'a lab record netctl cannot read',
      args: ['lab', 'status', '--name', 'ex-broken'],
      env: {NETCTL_STATE_DIR: stateDir},
      error: new RegExp(`^lab 'ex-broken' has an unreadable record ${stateDir}/ex-broken/lab\\.json: `),
    },
  ],
  usage: [
    {what: 'an unknown finding code', args: ['explain', 'NOPE'], error: "unknown code 'NOPE' (netctl explain --list)"},
    {what: 'an unknown command', args: ['frob'], error: "'frob' is not a netctl command. See 'netctl --help'."},
    {
      what: 'an unknown command under a topic, with a guess',
      args: ['lab', 'stauts'],
      error: "'lab stauts' is not a netctl command; did you mean 'lab status'? See 'netctl lab --help'.",
    },
    {
      what: 'an alias bomb in an inventory',
      args: ['collect', '--inventory', bomb],
      error: `${bomb}: not valid YAML (its aliases expand too far, as an alias bomb does)`,
    },
    {
      what: 'an alias bomb in a kubeconfig',
      args: ['collect', '--kubeconfig', bomb],
      error: `kubeconfig ${bomb}: not valid YAML (its aliases expand too far, as an alias bomb does)`,
      code: 'KUBECONFIG',
    },
    {
      what: 'a trace between IPv4 and IPv6',
      args: ['trace', 'pod-node1-1', 'web-v6', '--snapshot', v6],
      error:
        'pod-node1-1 (172.20.1.2) is IPv4 and web-v6 (fd00:10:244:3::5) is IPv6: a packet is one or the other; trace between two IPv4 or two IPv6 endpoints',
    },
    // lab up checks root first (environment); as root, the taken name is the user's to change
    ...(labSkipReason()
      ? []
      : [
          {
            what: 'lab up of a lab that exists',
            args: ['lab', 'up', '--name', takenLab],
            env: {NETCTL_STATE_DIR: stateDir},
            error: `lab '${takenLab}' already exists: run 'netctl lab down --name ${takenLab}' first, or pick another --name`,
          },
        ]),
  ],
  environment: [
    {
      what: 'an -o FILE that cannot be written',
      args: ['collect', '--inventory', ghost, '--output-file', path.join(dir, 'nowhere', 'snap.json')],
      error: `cannot write ${dir}/nowhere/snap.json: no such directory ${dir}/nowhere`,
    },
  ],
  unreachable: [
    {
      what: 'collect reaches no node',
      args: ['collect', '--inventory', ghost, '--timeout', '2'],
      result: {line: ghostLine, schema: 'snapshot'},
    },
    {
      what: 'backend get reaches no node',
      args: ['backend', 'get', '--inventory', ghost, '--timeout', '2'],
      result: {line: ghostLine, schema: 'backend-get'},
    },
  ],
  refused: [
    {
      what: 'backend plan refused by preflight',
      args: ['backend', 'plan', 'flannel-host-gw', '--inventory', ghost, '--timeout', '2'],
      result: {schema: 'backend-plan'},
    },
  ],
}

/** The line after an argument mistake that points at the command's help; nothing else may follow the one line. */
const HELP_POINTER = /^See 'netctl [a-z ]+ --help'\.$/

describe('exit codes: one table (src/errors.ts), a command for every row', () => {
  it('every class of the table has a row here, and a row in the README', () => {
    expect(Object.keys(ROWS).sort()).toEqual(Object.keys(ERROR_CLASSES).sort())
    const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8')
    for (const c of Object.values(ERROR_CLASSES))
      expect(readme).toMatch(new RegExp(`^\\| \`${c.exit}\` \\| \`${c.code}\` \\|`, 'm'))
  })

  const cases = Object.entries(ROWS).flatMap(([cls, rows]) =>
    rows.map((row) => [cls as ErrorClass, row.what, row] as const),
  )
  it.each(cases)('%s: %s', async (cls, _what, row) => {
    const {exit} = ERROR_CLASSES[cls]
    const text = await netctl(row.args, {env: row.env ?? {}})
    const json = await netctlJson(row.args, {env: row.env ?? {}})
    expect(text.code, text.stderr).toBe(exit)
    expect(json.code, json.stderr).toBe(exit)
    const [first = '', ...rest] = text.stderr.trimEnd().split('\n')
    if (row.error !== undefined) {
      // one line, and at most the pointer to --help after an argument mistake
      expect(first.startsWith('netctl: ')).toBe(true)
      const message = first.slice('netctl: '.length)
      if (typeof row.error === 'string') expect(message).toBe(row.error)
      else expect(message).toMatch(row.error)
      expect(rest.filter((l) => !HELP_POINTER.test(l))).toEqual([])
      expect(text.stdout).toBe('')
      // the same code with --json, in the one error shape every command prints
      expect(json.json).toEqual({error: {code: row.code ?? ERROR_CLASSES[cls].code, message, exitCode: exit}})
      expect(validatorFor('error')(json.json)).toBe(true)
    } else {
      // a result that means the code: the output says what, the line (if any) says why it is not 0
      expect(text.stderr).toBe(row.result?.line === undefined ? '' : `netctl: ${row.result.line}\n`)
      if (row.result?.schema) expect(validatorFor(row.result.schema)(json.json)).toBe(true)
    }
    expect(json.stderr).toBe('')
  })
})
