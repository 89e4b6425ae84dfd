import {chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {runtimeEntry} from '../../src/collect/node.js'
import {buildProbe, CRI_FIND, criPattern, octalEscape} from '../../src/collect/probe.js'
import {run} from '../../src/util/exec.js'
import {REPO} from '../helpers/cli.js'

const FIX = path.join(REPO, 'fixtures/crictl')
const dir = mkdtempSync(path.join(tmpdir(), 'netctl-cri-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/**
 * A crictl that answers from fixture files: `pods` prints $PODS (hex lines on
 * stdout, anything else on stderr, as crictl splits them), `inspectp` prints
 * $INSPECT, or $INSPECT_ERR on stderr with exit 1. Every argv is logged.
 */
const FAKE = `#!/bin/sh
printf '%s\\n' "$*" >> "$LOG"
case $1 in
  pods) grep -E '^[0-9a-f]+$' "$PODS"; [ -n "$PODS_ERR" ] && cat "$PODS_ERR" >&2; exit 0 ;;
  inspectp) if [ -n "$INSPECT_ERR" ]; then cat "$INSPECT_ERR" >&2; exit 1; fi; cat "$INSPECT" ;;
esac
`
writeFileSync(path.join(dir, 'crictl'), FAKE)
chmodSync(path.join(dir, 'crictl'), 0o755)

let n = 0
/** Run cri_find as the probe does (no `timeout` wrapper needed here), and read back its variables. */
type CriVars = {rc: string; sb: string; np: string; pp: string; msg: string; argv: string[]}
async function criFind(
  ns: string,
  name: string,
  files: {pods: string; podsErr?: string; inspect?: string; inspectErr?: string},
): Promise<CriVars> {
  const log = path.join(dir, `log-${++n}`)
  const script = `tmo() { "$@"; }\n${CRI_FIND}\ncri_find "$1" "$2"; rc=$?\nprintf '%s\\n' "rc=$rc" "sb=$_sb" "np=$_np" "pp=$_pp" "msg=$_msg"`
  const env = {
    ...process.env,
    PATH: `${dir}:${process.env.PATH}`,
    LOG: log,
    PODS: path.join(FIX, files.pods),
    PODS_ERR: files.podsErr ? path.join(FIX, files.podsErr) : '',
    INSPECT: files.inspect ? path.join(FIX, files.inspect) : '',
    INSPECT_ERR: files.inspectErr ? path.join(FIX, files.inspectErr) : '',
  }
  const r = await run('sh', ['-c', script, 'sh', criPattern(ns), criPattern(name)], {env})
  const vars = Object.fromEntries(
    r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Omit<CriVars, 'argv'>
  return {...vars, argv: readFileSync(log, 'utf8').trimEnd().split('\n')}
}

const idOf = (file: string): string => readFileSync(path.join(FIX, file), 'utf8').split('\n')[0]!
const json = (file: string): any => JSON.parse(readFileSync(path.join(FIX, file), 'utf8'))
const netnsOf = (file: string): string => {
  const spec = json(file).info.runtimeSpec
  return spec.linux.namespaces.find((x: {type: string}) => x.type === 'network').path
}

describe("finding a pod's network namespace through crictl", () => {
  it('asks for the ready sandbox of exactly that namespace and name, then inspects it', async () => {
    const r = await criFind('shop', 'web-5c7d9f8b6d-x2kqp', {
      pods: 'pods-q-one.txt',
      inspect: 'inspectp-containerd-sorted.json',
    })
    expect(r.argv).toEqual([
      `pods --namespace ^shop$ --name ^web-5c7d9f8b6d-x2kqp$ --state ready -q`,
      `inspectp ${idOf('pods-q-one.txt')}`,
    ])
    expect(r).toMatchObject({
      rc: '0',
      sb: idOf('pods-q-one.txt'),
      np: netnsOf('inspectp-containerd-sorted.json'),
      msg: '',
    })
  })

  it('reads the network path whatever the key order (crictl >= 1.26 sorts keys, older crictl kept the runtime order)', async () => {
    for (const file of [
      'inspectp-containerd-sorted.json',
      'inspectp-containerd-runtime-order.json',
      'inspectp-crio.json',
    ]) {
      const r = await criFind('default', 'x', {pods: 'pods-q-one.txt', inspect: file})
      expect(r.rc, file).toBe('0')
      expect(r.np, file).toBe(netnsOf(file))
    }
    // the network namespace path is in info, not in status.linux.namespaces.options (which only says POD)
    expect(json('inspectp-containerd-sorted.json').status.linux.namespaces.options.network).toBe('POD')
  })

  it("falls back to the sandbox's PID when its spec names no network path", async () => {
    const r = await criFind('default', 'legacy-1', {pods: 'pods-q-one.txt', inspect: 'inspectp-pid-only.json'})
    expect(r).toMatchObject({rc: '0', np: '', pp: String(json('inspectp-pid-only.json').info.pid)})
  })

  it("keeps crictl's warnings as a message, not as sandbox IDs", async () => {
    const r = await criFind('shop', 'web', {
      pods: 'pods-q-one.txt',
      podsErr: 'pods-warning.stderr.txt',
      inspect: 'inspectp-containerd-sorted.json',
    })
    expect(r.rc).toBe('0')
    expect(r.sb).toBe(idOf('pods-q-one.txt'))
    expect(r.msg).toContain('runtime connect using default endpoints')
  })

  it('two ready sandboxes: takes the first and says so', async () => {
    const r = await criFind('shop', 'web', {pods: 'pods-q-two.txt', inspect: 'inspectp-containerd-sorted.json'})
    expect(r.rc).toBe('0')
    expect(r.msg).toBe(`2 ready sandboxes match; took ${idOf('pods-q-two.txt')}`)
  })

  it('no sandbox, or inspectp failing, is a failure with the reason in one line', async () => {
    const none = await criFind('shop', 'gone', {pods: 'pods-warning.stderr.txt'})
    expect(none.rc).toBe('1')
    expect(none.msg).toBe('the container runtime has no ready sandbox for this pod')
    const failed = await criFind('shop', 'web', {pods: 'pods-q-one.txt', inspectErr: 'inspectp-notfound.stderr.txt'})
    expect(failed.rc).toBe('1')
    expect(failed.msg).toMatch(/^crictl inspectp [0-9a-f]{64} failed \(exit 1\): .*code = NotFound/)
    expect(failed.msg).not.toContain('\n')
  })

  it('pod names reach crictl as anchored patterns, with regular-expression characters escaped', () => {
    expect(criPattern('web-1')).toBe('^web-1$')
    expect(criPattern('db-0.primary')).toBe('^db-0\\.primary$')
    expect(new RegExp(criPattern('a.b+c')).test('a.b+c')).toBe(true)
    expect(new RegExp(criPattern('a.b+c')).test('axbbc')).toBe(false)
  })
})

describe('the probe for a pod known only by name', () => {
  it('expects its runtime section before it enters it, and passes the patterns as data', async () => {
    const probe = buildProbe({pods: [{namespace: 'shop', name: "x'; reboot; '"}, {netns: 'lab.pod1'}]})
    expect(probe.sections).toEqual(expect.arrayContaining(['pod.0.runtime', 'pod.0', 'pod.0.links', 'pod.1']))
    expect(probe.sections).not.toContain('pod.1.runtime')
    expect(probe.script).not.toContain("x'; reboot")
    expect(probe.script).toContain(`0 cri ${octalEscape('^shop$')} ${octalEscape(criPattern("x'; reboot; '"))}`)
    const r = await run('dash', ['-n', '-c', probe.script])
    expect(r.code, r.stderr).toBe(0)
  })

  it("reads the runtime section's answer: the sandbox and its way in", () => {
    expect(runtimeEntry('sandbox abc\nnetns /var/run/netns/cni-1')).toEqual({
      sandbox: 'abc',
      netns: '/var/run/netns/cni-1',
    })
    expect(runtimeEntry('sandbox abc\npid 31044')).toEqual({sandbox: 'abc', pid: 31044})
    expect(() => runtimeEntry('sandbox abc')).toThrow(/runtime: expected a sandbox/)
  })
})
