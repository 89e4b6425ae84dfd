/**
 * `trace --probe` and `check --probe` from Kubernetes: the API-server emulator
 * in front of a routed 3-node flannel vxlan lab, nodes reached through debug
 * pods (exec'd in the lab node's namespace), the source pod's network namespace
 * found through the container runtime (crictl on the node) and entered with
 * nsenter, as on a real cluster. Judged by real pings.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import type {Finding} from '../../src/model/finding.js'
import type {Trace} from '../../src/model/trace.js'
import {MANAGED_BY_LABEL} from '../../src/transport/kube-debug.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctlJson} from '../helpers/cli.js'
import {KubeApiServer} from '../helpers/kube-apiserver.js'
import {describeLab, ping, useLab} from '../helpers/lab.js'
import {withLinkChatter, withRouterDrop} from '../helpers/probe-lab.js'

const dir = mkdtempSync(path.join(tmpdir(), 'pc-probe-kube-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describeLab('trace --probe and check --probe through debug pods: the emulator over a routed flannel vxlan lab', () => {
  const lab = useLab('pckube', [
    '--nodes',
    '3',
    '--pods-per-node',
    '1',
    '--backend',
    'flannel-vxlan',
    '--topology',
    'routed',
  ])
  let server: KubeApiServer
  let kubeconfig = ''
  beforeAll(async () => {
    server = await KubeApiServer.start()
    server.seedFromLab(lab.get())
    kubeconfig = server.writeKubeconfig(path.join(dir, `${lab.get().name}.kubeconfig`), {
      context: `lab-${lab.get().name}`,
    })
  })
  afterAll(async () => {
    await server?.close()
  })
  const debugPods = () => server.list('pods').filter((p) => p.metadata.labels?.[MANAGED_BY_LABEL] === 'netctl')
  const pod = (name: string) => lab.get().pods.find((p) => p.name === name)!

  it('a healthy pair: confirmed, every echo answered, sent from the pod netns the runtime names; no debug pod left', async () => {
    expect(await ping(pod('pod-node1-1').netns, pod('pod-node3-1').ip)).toBe(true)
    const r = await netctlJson<Trace>(['trace', 'pod-node1-1', 'pod-node3-1', '--kubeconfig', kubeconfig, '--probe'])
    expect(r.code, r.stderr).toBe(0)
    const validate = validatorFor('trace')
    expect(validate(r.json), describeSchemaError(validate.errors)).toBe(true)
    expect(r.json.disposition).toBe('DELIVERED')
    expect(r.json.probe).toMatchObject({verdict: 'confirmed', sent: 3, answered: 3, firstMissing: null})
    // the crictl stand-in answers as a runtime does: the sandbox's network namespace path, entered with nsenter
    expect(r.json.probe!.command).toMatch(
      new RegExp(`^nsenter --net=/var/run/netns/${pod('pod-node1-1').netns.replace(/\./g, '\\.')} ping `),
    )
    // counters were read on both nodes, through their debug pods
    expect([...new Set(r.json.probe!.counters.map((c) => c.node))].sort()).toEqual(['node1', 'node3'])
    expect(debugPods()).toEqual([])
  })

  it(
    'the router drops UDP 8472: trace --probe says UNDERLAY_DROP between node1 and node3, check --probe loses exactly the pairs ping loses',
    {timeout: 300_000},
    async () => {
      const {name, nodes} = lab.get()
      const ip = (n: string) => nodes.find((x) => x.name === n)!.ip
      const router = `${name}.router`
      // meanwhile both router legs send IPv6 link-local multicast that every node's eth0 counts (issue 17's noise, certain)
      await withRouterDrop(router, 8472, () =>
        withLinkChatter(router, ['eth-a', 'eth-b'], async () => {
          expect(await ping(pod('pod-node1-1').netns, pod('pod-node3-1').ip)).toBe(false)
          const t = await netctlJson<Trace>([
            'trace',
            'pod-node1-1',
            'pod-node3-1',
            '--kubeconfig',
            kubeconfig,
            '--probe',
          ])
          expect(t.code).toBe(1)
          expect(t.json.disposition).toBe('UNDERLAY_DROP')
          expect(t.json.probe).toMatchObject({
            verdict: 'underlay-drop',
            answered: 0,
            lastSeen: {node: 'node1', interface: 'eth0', direction: 'tx'},
            firstMissing: {node: 'node3', interface: 'eth0', direction: 'rx'},
          })
          // the chatter reached node3's eth0, as much as the probe sent or more, and was left out
          const rx = t.json.probe!.counters.find(
            (c) => c.node === 'node3' && c.interface === 'eth0' && c.direction === 'rx',
          )
          expect(rx?.ipv6Multicast).toBeGreaterThanOrEqual(t.json.probe!.sent)
          const f = t.json.findings.find((x) => x.code === 'UNDERLAY_DROP')!
          expect(f.subject).toBe(`node1 (${ip('node1')}) → node3 (${ip('node3')})`)
          expect(f.message).toContain('UDP 8472')

          const c = await netctlJson<{findings: Finding[]; probe: {pairs: Array<Record<string, string>>}}>([
            'check',
            '--kubeconfig',
            kubeconfig,
            '--probe',
          ])
          expect(c.code, c.stderr).toBe(1)
          const validate = validatorFor('check')
          expect(validate(c.json), describeSchemaError(validate.errors)).toBe(true)
          const kernel: string[] = []
          for (const s of ['node1', 'node2', 'node3'])
            for (const d of ['node1', 'node2', 'node3'])
              if (s !== d && !(await ping(pod(`pod-${s}-1`).netns, pod(`pod-${d}-1`).ip))) kernel.push(`${s} → ${d}`)
          expect(kernel).toEqual(['node1 → node3', 'node2 → node3', 'node3 → node1', 'node3 → node2'])
          expect(
            c.json.probe.pairs
              .filter((p) => p.status !== 'carried')
              .map((p) => `${p.srcNode} → ${p.dstNode}`)
              .sort(),
          ).toEqual(kernel)
          expect(c.json.findings.filter((x) => x.code === 'UNDERLAY_DROP').map((x) => x.subject)).toEqual([
            `4 node pairs: ${kernel.join(', ')}`,
          ])
        }),
      )
      expect(debugPods()).toEqual([])
    },
  )
})
