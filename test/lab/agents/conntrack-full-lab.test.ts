/**
 * CONNTRACK_TABLE_FULL on a real kernel: nf_conntrack_max is the machine's (read
 * only in a child namespace), but nf_conntrack_count is per network namespace and
 * the kernel compares it with that maximum, so one lab node's namespace can be
 * filled on its own. Entries are loaded with `conntrack -R` (ASSURED, so that the
 * kernel's early drop does not evict them for a new flow; a long timeout, so that
 * they stay while the test reads them). At 92% check and trace warn naming the node,
 * the count and the maximum, and a connect through the node still works; at the
 * maximum (the table emptied and refilled with entries of ours only, which do not expire
 * during the test) the finding is an error and a real connect from a pod of that node fails.
 * Nothing is loaded outside the lab node's namespace; the entries go with it.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, expect, it} from 'vitest'

import {run} from '../../../src/util/exec.js'
import {netctlJson} from '../../helpers/cli.js'
import {describeLab, type LabUp, nsExec, useLab} from '../../helpers/lab.js'

/** beyond this the fill costs more than a test should (~400 bytes of kernel memory an entry) */
const MAX_FILLABLE = 600_000
const WEB = '172.21.0.80'

interface Finding {
  code: string
  severity: string
  node?: string
  subject: string
  message: string
  evidence: string[]
}

const dir = await mkdtemp(path.join(tmpdir(), 'so-ct-full-'))
afterAll(() => rm(dir, {recursive: true, force: true}))

let batch = 0
/** `n` UDP entries no lab flow uses (10.64.0.0/10 → 192.0.2.1, TEST-NET-1), loaded in one conntrack -R. */
async function fill(netns: string, n: number): Promise<void> {
  batch += 1
  const lines: string[] = []
  for (let i = 0; i < n; i++) {
    // a distinct source address per entry, a distinct source port per batch
    const a = 64 + Math.floor(i / 62_500)
    const b = Math.floor((i % 62_500) / 250)
    const c = (i % 250) + 1
    lines.push(
      `-I -s 10.${a}.${b}.${c} -d 192.0.2.1 -p udp --sport ${1000 + batch} --dport 9 --timeout 900 --status ASSURED`,
    )
  }
  const file = path.join(dir, `fill-${batch}.txt`)
  await writeFile(file, `${lines.join('\n')}\n`)
  // past the maximum the kernel refuses the rest ("not enough memory"): the count is what matters
  await nsExec(netns, ['conntrack', '-R', file], 180_000)
  await rm(file, {force: true})
}

async function count(netns: string): Promise<number> {
  return Number((await nsExec(netns, ['cat', '/proc/sys/net/netfilter/nf_conntrack_count'])).stdout)
}

async function connect(netns: string): Promise<string> {
  return (await nsExec(netns, ['sh', '-c', `nc -w 2 ${WEB} 80 </dev/null; echo rc=$?`], 20_000)).stdout.trim()
}

describeLab("CONNTRACK_TABLE_FULL: one lab node's conntrack table filled with real entries", () => {
  const lab = useLab('so-ctf', [
    '--nodes',
    '2',
    '--pods-per-node',
    '2',
    '--backend',
    'flannel-vxlan',
    '--proxy-mode',
    'iptables',
  ])
  const node1 = (l: LabUp) => l.nodes.find((n) => n.name === 'node1')!.netns
  const client = (l: LabUp) => l.pods.find((p) => p.name === 'pod-node1-2')!.netns
  const full = async (l: LabUp) =>
    (await netctlJson<{findings: Finding[]}>(['check', '--lab', l.name])).json.findings.filter(
      (f) => f.code === 'CONNTRACK_TABLE_FULL',
    )

  it(
    'at 92% of nf_conntrack_max: a warning naming node1, its count and the maximum, from check and from a trace through node1; connects still work. At the maximum: an error, and a real connect from node1 fails',
    {timeout: 600_000},
    async (ctx) => {
      const l = lab.get()
      const ns = node1(l)
      const max = Number((await nsExec(ns, ['cat', '/proc/sys/net/netfilter/nf_conntrack_max'])).stdout)
      expect(max).toBeGreaterThan(0)
      if (max > MAX_FILLABLE) {
        ctx.skip(`nf_conntrack_max is ${max} here: filling it would take more kernel memory than a test should`)
        return
      }
      try {
        expect(await full(l)).toEqual([])
        expect(await connect(client(l))).toMatch(/^pod-node[12]-1\nrc=0$/)

        await fill(ns, Math.ceil(0.92 * max) - (await count(ns)))
        const filled = await count(ns)
        expect(filled / max).toBeGreaterThanOrEqual(0.9)
        expect(filled).toBeLessThan(max)
        const warned = await full(l)
        expect(warned.map((f) => `${f.severity} ${f.node}`)).toEqual(['warning node1'])
        // the count the probe read is the namespace's own (the lab's own flows move it a little)
        const [seen, seenMax] = warned[0]!.subject.replace('conntrack ', '').split('/').map(Number)
        expect(Math.abs(seen! - filled)).toBeLessThan(50)
        expect(seenMax).toBe(max)
        expect(warned[0]!.message).toContain(`of ${max} entries`)
        expect(warned[0]!.evidence).toContain(`net.netfilter.nf_conntrack_max = ${max}`)
        const traced = await netctlJson<{findings: Finding[]}>([
          'trace',
          'pod-node1-2',
          'svc/default/web',
          '--lab',
          l.name,
        ])
        expect(
          traced.json.findings.filter((f) => f.code === 'CONNTRACK_TABLE_FULL').map((f) => `${f.severity} ${f.node}`),
        ).toEqual(['warning node1'])
        // below the maximum the kernel still tracks new flows
        expect(await connect(client(l))).toMatch(/^pod-node[12]-1\nrc=0$/)

        // only entries of ours at the maximum: the lab's own (the connects above, their vxlan packets) would expire
        // in the minutes the rest takes and let new flows in again, so the table is emptied and refilled
        await nsExec(ns, ['conntrack', '-F'], 120_000)
        await fill(ns, max + 100)
        expect(await count(ns)).toBe(max)
        // the first packet of a new flow through node1 finds no room: dropped, the connect times out
        expect(await connect(client(l))).toMatch(/^rc=[1-9]/)
        const errored = await full(l)
        expect(errored.map((f) => `${f.severity} ${f.node}`)).toEqual(['error node1'])
        expect(errored[0]!.message).toContain(`full (${max} of ${max} entries)`)
        expect(await count(ns)).toBe(max)
        const traceAtMax = await netctlJson<{findings: Finding[]}>([
          'trace',
          'pod-node1-2',
          'svc/default/web',
          '--lab',
          l.name,
        ])
        expect(
          traceAtMax.json.findings
            .filter((f) => f.code === 'CONNTRACK_TABLE_FULL')
            .map((f) => `${f.severity} ${f.node}`),
        ).toEqual(['error node1'])
        expect(traceAtMax.code).toBe(1)
        // the fix as printed, typed line by line (the lab's: the maximum cannot be raised inside a node's namespace)
        const fixLines = errored[0]!.fix.split('\n').filter((line) => !line.startsWith('#'))
        expect(fixLines).toEqual([`ip netns exec ${ns} conntrack -S`, `ip netns exec ${ns} conntrack -F`])
        for (const line of fixLines) expect((await run('sh', ['-c', line], {timeoutMs: 120_000})).code).toBe(0)
        expect(await count(ns)).toBeLessThan(0.9 * max)
        expect(await connect(client(l))).toMatch(/^pod-node[12]-1\nrc=0$/)
      } finally {
        // the entries' kernel memory back now rather than at lab down
        await nsExec(ns, ['conntrack', '-F'], 120_000)
      }
    },
  )
})
