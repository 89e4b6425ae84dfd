/**
 * `netctl lab kube-proxy sync`, the lab's kube-proxy restart: a node's Service
 * rules taken away with plain iptables / nft, `check` names the node and prints
 * the lab command as the fix, the fix run as printed, and the Services answer
 * again from the pods of that node, with rules equal to what `lab up` installed.
 * Also -n with --lab: svc/NAME in that namespace.
 */
import {describe, expect, it} from 'vitest'

import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {describeLab, type LabUp, nsExec, useLab} from '../helpers/lab.js'
import {connectFrom} from '../helpers/service-traffic.js'

interface Finding {
  code: string
  severity: string
  node?: string
  fix: string
}

const DNS = '172.21.0.10'
const WEB = '172.21.0.80'

/** n DNS queries at once (each a new source port, so each balanced afresh): the answering pods, '' for none. */
async function dnsAnswers(netns: string, n = 8): Promise<string[]> {
  const one = `out=$(echo q | socat -t 2 - UDP4:${DNS}:53); echo "ans:\${out}"`
  const r = await nsExec(netns, ['sh', '-c', `for i in $(seq ${n}); do (${one}) & done; wait`], 30_000)
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('ans:'))
    .map((l) => l.slice(4).trim())
}

const answered = (answers: string[]): number =>
  answers.filter((a) => /^pod-node\d+-\d+$/.test(a)).length / answers.length

/** The rules of kube-proxy a node holds, as text to compare (counters left out). */
async function kubeProxyRules(netns: string, proxy: 'iptables' | 'nftables'): Promise<string> {
  const r =
    proxy === 'iptables'
      ? await nsExec(netns, ['iptables-save'])
      : await nsExec(netns, ['nft', 'list', 'table', 'ip', 'kube-proxy'])
  return r.stdout
    .split('\n')
    .filter((l) => !l.startsWith('#') && (proxy === 'nftables' || /KUBE-/.test(l)))
    .map((l) => l.replace(/\[\d+:\d+\]/, ''))
    .join('\n')
}

const CASES = [
  {
    proxy: 'iptables' as const,
    code: 'SERVICE_RULES_STALE',
    // what a careless `iptables -t nat -F` of kube-proxy's entry chain and its jump does
    breakIt: [
      ['iptables', '-t', 'nat', '-F', 'KUBE-SERVICES'],
      [
        'iptables',
        '-t',
        'nat',
        '-D',
        'PREROUTING',
        '-m',
        'comment',
        '--comment',
        'kubernetes service portals',
        '-j',
        'KUBE-SERVICES',
      ],
    ],
  },
  {proxy: 'nftables' as const, code: 'KUBE_PROXY_MISSING', breakIt: [['nft', 'delete', 'table', 'ip', 'kube-proxy']]},
]

describeLab('lab kube-proxy sync: the printed fix for a node whose kube-proxy rules are gone', () => {
  for (const {proxy, code, breakIt} of CASES) {
    describe(`kube-proxy in ${proxy} mode`, {concurrent: true}, () => {
      const lab = useLab(`so-kps-${proxy.slice(0, 3)}`, [
        '--nodes',
        '2',
        '--pods-per-node',
        '2',
        '--backend',
        'flannel-vxlan',
        '--proxy-mode',
        proxy,
      ])
      const pod = (l: LabUp, name: string) => l.pods.find((p) => p.name === name)!

      it(
        `rules taken away on node1: ${code} names node1 with the lab command as its fix; run as printed, the Services answer again`,
        {timeout: 300_000},
        async () => {
          const l = lab.get()
          const node1 = l.nodes.find((n) => n.name === 'node1')!.netns
          const src = pod(l, 'pod-node1-2').netns
          const installed = await kubeProxyRules(node1, proxy)
          expect(installed).toMatch(/KUBE-SVC-|service-/)
          // on a loaded machine an answer can come after the client stopped waiting, never most of them
          expect(answered(await dnsAnswers(src))).toBeGreaterThan(0.5)

          for (const argv of breakIt) expect((await nsExec(node1, argv)).code, argv.join(' ')).toBe(0)
          // nothing translates the ClusterIP on node1 any more
          expect((await dnsAnswers(src, 3)).every((a) => a === '')).toBe(true)
          expect(await connectFrom(src, WEB, 80)).toBe('')

          const check = await netctlJson<{findings: Finding[]}>(['check', '--lab', l.name])
          const found = check.json.findings.filter((f) => f.code === code)
          expect(found.length, check.stderr).toBeGreaterThan(0)
          expect(new Set(found.map((f) => f.node))).toEqual(new Set(['node1']))
          const lines = found[0]!.fix.split('\n').filter((x) => x.trim() !== '' && !x.startsWith('#'))
          expect(lines).toEqual([`netctl lab kube-proxy sync --lab ${l.name} --node node1`])

          // the fix, as a user pastes it
          const fixed = await netctlJson(lines[0]!.split(' ').slice(1))
          expect(fixed.code, fixed.stderr).toBe(0)
          const validate = validatorFor('lab-kube-proxy-sync')
          expect(validate(fixed.json), describeSchemaError(validate.errors)).toBe(true)
          expect(fixed.json).toMatchObject({lab: l.name, nodes: [{node: 'node1', mode: proxy}]})

          expect(await kubeProxyRules(node1, proxy)).toBe(installed)
          expect(answered(await dnsAnswers(src))).toBeGreaterThan(0.5)
          expect(await connectFrom(src, WEB, 80, 5)).toMatch(/^pod-node[12]-1$/)
          const after = await netctlJson<{findings: Finding[]}>(['check', '--lab', l.name])
          expect(after.json.findings.filter((f) => f.code === code)).toEqual([])

          // a second sync changes nothing (the jumps are ensured, not added again)
          expect((await netctl(['lab', 'kube-proxy', 'sync', '--lab', l.name])).code).toBe(0)
          expect(await kubeProxyRules(node1, proxy)).toBe(installed)
        },
      )

      if (proxy === 'iptables')
        it('-n with --lab: svc/NAME is looked for in that namespace', async () => {
          const l = lab.get()
          const r = await netctlJson<{service?: {namespace: string; name: string}}>([
            'trace',
            'default/pod-node1-2',
            'svc/kube-dns',
            '-n',
            'kube-system',
            '--lab',
            l.name,
          ])
          expect(r.json.service, r.stderr).toMatchObject({namespace: 'kube-system', name: 'kube-dns'})
        })
    })
  }

  it('a lab that is not there: one line, exit 2', async () => {
    const r = await netctl(['lab', 'kube-proxy', 'sync', '--lab', 'so-no-such-lab'])
    expect(r.code).toBe(2)
    expect(r.stderr.split('\n')[0]).toBe("netctl: no lab named 'so-no-such-lab' (see netctl lab list)")
  })
})
