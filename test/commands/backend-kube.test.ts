import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {RESTARTED_AT} from '../../src/backend/act/kubernetes.js'
import {MANAGED_BY_LABEL} from '../../src/transport/kube-debug.js'
import {validatorFor} from '../../src/util/schema.js'
import {pollUntil} from '../../src/util/wait.js'
import {expectAllPodsReachable} from '../backend/lab-helpers.js'
import {BIN, netctl, netctlJson} from '../helpers/cli.js'
import {felixStandin, flanneldStandin, type StandinControl} from '../helpers/cni-standin.js'
import {KubeApiServer} from '../helpers/kube-apiserver.js'
import {describeLab, ipJson, type LabUp, useLab} from '../helpers/lab.js'

const dir = mkdtempSync(path.join(tmpdir(), 'netctl-backend-kube-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** The API-server emulator seeded from a lab, with a kubeconfig for it. */
async function emulate(lab: LabUp): Promise<{server: KubeApiServer; kubeconfig: string}> {
  const server = await KubeApiServer.start()
  server.seedFromLab(lab)
  return {server, kubeconfig: server.writeKubeconfig(path.join(dir, `${lab.name}.yaml`), {context: `lab-${lab.name}`})}
}

const debugPods = (server: KubeApiServer) =>
  server.list('pods').filter((p) => p.metadata.labels?.[MANAGED_BY_LABEL] === 'netctl')

/** The route the kernel of `netns` takes to `ip`, as `ip route get` says it. */
async function routeGet(netns: string, ip: string): Promise<{dev: string; gateway?: string}> {
  const [r] = await ipJson<Array<{dev: string; gateway?: string}>>(netns, ['route', 'get', ip])
  return r!
}

const linkNames = async (netns: string): Promise<string[]> =>
  (await ipJson<Array<{ifname: string}>>(netns, ['link'])).map((l) => l.ifname)

describeLab(
  'netctl backend through Kubernetes: flannel ConfigMap + DaemonSet rollout over a 3-node flannel-vxlan lab',
  () => {
    const lab = useLab('kbf', ['--nodes', '3', '--backend', 'flannel-vxlan'])
    let server: KubeApiServer
    let kubeconfig: string
    let flanneld: StandinControl
    const netConf = (): string => server.get('configmaps', 'kube-flannel', 'kube-flannel-cfg')!.data['net-conf.json']

    beforeAll(async () => {
      ;({server, kubeconfig} = await emulate(lab.get()))
      flanneld = flanneldStandin(
        server,
        lab.get().name,
        Object.fromEntries(lab.get().nodes.map((n) => [n.name, n.vtepMAC])),
      )
    })
    afterAll(async () => {
      await server?.close()
    })

    it('backend get and plan read the backend from the cluster and its nodes through debug pods', async () => {
      const get = await netctlJson(['backend', 'get', '--kubeconfig', kubeconfig])
      expect(get.code, get.stderr).toBe(0)
      expect(validatorFor('backend-get')(get.json)).toBe(true)
      expect(get.json.cluster).toMatchObject({source: 'kubernetes', configured: 'flannel-vxlan'})
      expect(get.json.drift).toEqual([])
      const plan = await netctlJson(['backend', 'plan', 'flannel-host-gw', '--kubeconfig', kubeconfig])
      expect(plan.code, plan.stderr).toBe(0)
      expect(validatorFor('backend-plan')(plan.json), JSON.stringify(validatorFor('backend-plan').errors)).toBe(true)
      expect(plan.json.objects).toEqual([
        'configmap kube-flannel/kube-flannel-cfg: net-conf.json Backend.Type -> host-gw',
        'daemonset kube-flannel/kube-flannel-ds: restarted',
      ])
      expect(plan.json.preflight.ok).toBe(true)
      // as text: the objects the switch would write, under the per-node diff
      const text = await netctl(['backend', 'plan', 'flannel-host-gw', '--kubeconfig', kubeconfig])
      expect(text.code, text.stderr).toBe(0)
      expect(text.stdout).toMatch(
        /objects \(flanneld programs the nodes when it restarts[^\n]*\n {2}configmap kube-flannel\/kube-flannel-cfg: net-conf.json Backend.Type -> host-gw\n {2}daemonset kube-flannel\/kube-flannel-ds: restarted/,
      )
      expect(text.stdout).toMatch(/preflight: ok/)
      // read-only: nothing written, no debug pod left
      expect(JSON.parse(netConf()).Backend.Type).toBe('vxlan')
      expect(debugPods(server)).toEqual([])
    })

    it('backend set flannel-host-gw: ConfigMap patched keeping every other field, flannel restarted, flannel.1 cleared, verified, pods reachable', async () => {
      const before = JSON.parse(netConf())
      const r = await netctlJson(['backend', 'set', 'flannel-host-gw', '--kubeconfig', kubeconfig, '--yes'], {
        timeoutMs: 240_000,
      })
      expect(r.code, `${r.stderr} ${JSON.stringify(r.json?.message)}`).toBe(0)
      expect(validatorFor('backend-set')(r.json), JSON.stringify(validatorFor('backend-set').errors)).toBe(true)
      expect(r.json.outcome).toBe('applied')
      expect(r.json.verify.ok).toBe(true)
      expect(r.json.verify.traced.delivered).toBe(r.json.verify.traced.pairs)
      // real pings from inside the pods' namespaces on their nodes, through the debug pods: 3 nodes, one pod each way, and a same-node pair each
      expect(r.json.verify.reachability).toMatchObject({pairs: 9, ok: 9, failed: []})
      expect(JSON.parse(netConf())).toEqual({...before, Backend: {...before.Backend, Type: 'host-gw'}})
      const ds = server.get('daemonsets', 'kube-flannel', 'kube-flannel-ds')!
      expect(ds.spec.template.metadata.annotations[RESTARTED_AT]).toBeDefined()
      expect(flanneld.runs).toEqual(['flannel-host-gw'])
      // the kernel agrees: the next hop to a pod on another node is that node, over the underlay; flannel.1 is gone
      const [a, b] = lab.get().nodes
      const podOnB = lab.get().pods.find((p) => p.node === b!.name)!
      expect(await routeGet(a!.netns, podOnB.ip)).toMatchObject({gateway: b!.ip})
      for (const n of lab.get().nodes) expect(await linkNames(n.netns)).not.toContain('flannel.1')
      await expectAllPodsReachable(lab.get())
      expect(debugPods(server)).toEqual([])
    })

    it('a rollout that never completes is rolled back: the ConfigMap written back as it was, every node on host-gw again', async () => {
      const before = netConf()
      flanneld.failNext.add(lab.get().nodes[2]!.name)
      const r = await netctlJson(
        ['backend', 'set', 'flannel-vxlan', '--kubeconfig', kubeconfig, '--yes', '--rollout-timeout', '8'],
        {timeoutMs: 240_000},
      )
      expect(r.code, r.stderr).toBe(4)
      expect(r.json.outcome, r.json.message).toBe('rolled-back')
      expect(r.json.message).toMatch(/did not roll out within 8s/)
      expect(netConf()).toBe(before)
      expect(flanneld.runs.slice(-2)).toEqual(['flannel-vxlan', 'flannel-host-gw'])
      const [a, b] = lab.get().nodes
      expect(await routeGet(a!.netns, lab.get().pods.find((p) => p.node === b!.name)!.ip)).toMatchObject({
        gateway: b!.ip,
      })
      await expectAllPodsReachable(lab.get())
      expect(debugPods(server)).toEqual([])
    })

    it('a change Lease another run holds refuses backend set at once, in one line naming it; nothing read from a node, nothing written', async () => {
      const now = new Date().toISOString().replace('Z', '000Z')
      const holder = {host: 'ops-laptop', pid: 311, user: 'dave', since: now, command: 'backend set flannel-udp'}
      server.add({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: {
          name: 'netctl-change',
          namespace: 'kube-flannel',
          annotations: {'netctl.dev/holder': JSON.stringify(holder)},
        },
        spec: {
          holderIdentity: 'dave@ops-laptop_311',
          leaseDurationSeconds: 30,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 3,
        },
      })
      const before = netConf()
      const r = await netctl(['backend', 'set', 'flannel-host-gw', '--kubeconfig', kubeconfig, '--yes'], {
        timeoutMs: 120_000,
      })
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr.trim()).toMatch(
        new RegExp(
          `^netctl: refused: the cluster \\(Lease kube-flannel/netctl-change\\) is being changed by dave@ops-laptop \\(pid 311, netctl backend set flannel-udp\\) since ${now.replace(/[.]/g, '\\.')}; retry later or pass --lock-timeout to wait; its lease expires at \\S+ unless renewed$`,
        ),
      )
      expect(netConf()).toBe(before)
      expect(
        server.created.filter(
          (o) =>
            o.kind === 'Pod' &&
            o.metadata.labels?.[MANAGED_BY_LABEL] === 'netctl' &&
            Date.parse(o.metadata.creationTimestamp) >= Date.parse(now) - 1000,
        ),
      ).toEqual([])
      expect(server.get('leases', 'kube-flannel', 'netctl-change')!.spec.holderIdentity).toBe('dave@ops-laptop_311')
    })

    it('backend set flannel-vxlan over that Lease once it expired: taken over, held through the switch, released; back to the overlay, the VTEP MACs flanneld announces', async () => {
      const old = new Date(Date.now() - 5 * 60_000).toISOString().replace('Z', '000Z')
      server.update('leases', 'kube-flannel', 'netctl-change', (o) => {
        o.spec.renewTime = old
      })
      const seen: Array<string | undefined> = []
      server.onChange('leases', (next) => void seen.push(next.spec?.holderIdentity))
      const r = await netctlJson(['backend', 'set', 'flannel-vxlan', '--kubeconfig', kubeconfig, '--yes'], {
        timeoutMs: 240_000,
      })
      expect(r.code, `${r.stderr} ${JSON.stringify(r.json?.message)}`).toBe(0)
      // taken by this run (user@host_pid), then let go: no holder, one more transition
      expect(seen.length).toBeGreaterThanOrEqual(2)
      expect(seen[0]).toMatch(new RegExp(`^\\S+@${hostname()}_\\d+$`))
      expect(seen.at(-1)).toBeUndefined()
      expect(server.get('leases', 'kube-flannel', 'netctl-change')!.spec).toMatchObject({leaseTransitions: 4})
      expect(JSON.parse(netConf()).Backend.Type).toBe('vxlan')
      const [a, b] = lab.get().nodes
      expect(await routeGet(a!.netns, lab.get().pods.find((p) => p.node === b!.name)!.ip)).toMatchObject({
        dev: 'flannel.1',
      })
      await expectAllPodsReachable(lab.get())
      expect(debugPods(server)).toEqual([])
    }, 300_000)

    it('a ConfigMap RBAC will not let netctl patch: exit 4 in one line, nothing in the cluster changed, no restart', async () => {
      const before = netConf()
      const generation = server.get('daemonsets', 'kube-flannel', 'kube-flannel-ds')!.metadata.generation
      server.deny.push({verb: 'patch', resource: 'configmaps'})
      try {
        const r = await netctl(['backend', 'set', 'flannel-host-gw', '--kubeconfig', kubeconfig, '--yes'], {
          timeoutMs: 120_000,
        })
        expect(r.code).toBe(4)
        const lines = r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('netctl:'))
        expect(lines).toHaveLength(1)
        expect(lines[0]).toMatch(/not applied: .*patch.*configmaps.*; nothing in the cluster was changed/)
      } finally {
        server.deny.pop()
      }
      expect(netConf()).toBe(before)
      expect(server.get('daemonsets', 'kube-flannel', 'kube-flannel-ds')!.metadata.generation).toBe(generation)
      expect(debugPods(server)).toEqual([])
    })

    it('Ctrl-C once flanneld runs host-gw on every node: rolled back through the debug pods the switch uses, ConfigMap as before, overlay again, lock released, no pod left', async () => {
      const before = netConf()
      const [a, b] = lab.get().nodes
      const podOnB = lab.get().pods.find((p) => p.node === b!.name)!
      // its own process group, as a terminal's foreground job: Ctrl-C reaches netctl and anything it runs
      const {NODE_ENV: _test, ...env} = process.env
      const child = spawn(
        process.execPath,
        [BIN, 'backend', 'set', 'flannel-host-gw', '--kubeconfig', kubeconfig, '--yes', '--json'],
        {env: {...env, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe'], detached: true},
      )
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
        child.once('close', (code, sig) => resolve(sig ?? code)),
      )
      try {
        // the moment that matters: the ConfigMap written, flanneld restarted on host-gw, netctl verifying through its debug pods
        await pollUntil(
          async () => {
            if (child.exitCode !== null)
              throw new Error(`netctl ended before the switch (exit ${child.exitCode}): ${stderr}`)
            return JSON.parse(netConf()).Backend.Type === 'host-gw' &&
              (await routeGet(a!.netns, podOnB.ip)).gateway === b!.ip &&
              debugPods(server).length === 3
              ? true
              : undefined
          },
          {timeoutMs: 180_000, intervalMs: 100, reason: () => `never switched to host-gw: ${stderr}`},
        )
        process.kill(-child.pid!, 'SIGINT')
        expect(await exited, stderr).toBe(4)
      } finally {
        if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL')
      }
      const r = JSON.parse(stdout)
      expect(r.outcome, r.message).toBe('rolled-back')
      expect(r.message).toMatch(
        /^rolled back: interrupted by SIGINT; configmap kube-flannel\/kube-flannel-cfg, daemonset kube-flannel\/kube-flannel-ds restored and every node holds flannel-vxlan again$/,
      )
      expect(r.rollback.verify.ok).toBe(true)
      expect(netConf()).toBe(before)
      expect(flanneld.runs.slice(-2)).toEqual(['flannel-host-gw', 'flannel-vxlan'])
      expect(await routeGet(a!.netns, podOnB.ip)).toMatchObject({dev: 'flannel.1'})
      await expectAllPodsReachable(lab.get())
      expect(debugPods(server)).toEqual([])
      expect(server.get('leases', 'kube-flannel', 'netctl-change')!.spec.holderIdentity).toBeFalsy()
    }, 300_000)
  },
)

describeLab('netctl backend through Kubernetes: Calico IPPools over a 3-node calico-bgp lab', () => {
  const lab = useLab('kbc', ['--nodes', '3', '--backend', 'calico-bgp'])
  let server: KubeApiServer
  let kubeconfig: string
  let felix: StandinControl

  beforeAll(async () => {
    ;({server, kubeconfig} = await emulate(lab.get()))
    felix = felixStandin(server, lab.get().name)
  })
  afterAll(async () => {
    await server?.close()
  })

  it('backend set calico-vxlan patches the IPPool; Felix programs vxlan.calico; verified and reachable; back to BGP; another CNI refused', async () => {
    const pool = () => server.list('ippools')[0]!
    // pods keep eth0 1500 under vxlan.calico's 1450: refused by the what-if without --force, nothing written
    const refused = await netctlJson(['backend', 'set', 'calico-vxlan', '--kubeconfig', kubeconfig, '--yes'], {
      timeoutMs: 240_000,
    })
    expect(refused.code, refused.json.message).toBe(4)
    expect(refused.json.message).toMatch(/^refused by the what-if: full-size packets \(1500 bytes, DF\) would die/)
    expect(pool().spec).toMatchObject({ipipMode: 'Never', vxlanMode: 'Never'})
    const r = await netctlJson(['backend', 'set', 'calico-vxlan', '--kubeconfig', kubeconfig, '--yes', '--force'], {
      timeoutMs: 240_000,
    })
    expect(r.code, `${r.stderr} ${JSON.stringify(r.json?.message)} ${server.reactorErrors.join('; ')}`).toBe(0)
    expect(r.json.objects).toEqual([
      `ippool ${pool().metadata.name}: ipipMode Never -> Never, vxlanMode Never -> Always`,
    ])
    expect(pool().spec).toMatchObject({ipipMode: 'Never', vxlanMode: 'Always'})
    expect(felix.runs).toEqual(['calico-vxlan'])
    const [a, b] = lab.get().nodes
    expect(await routeGet(a!.netns, lab.get().pods.find((p) => p.node === b!.name)!.ip)).toMatchObject({
      dev: 'vxlan.calico',
    })
    await expectAllPodsReachable(lab.get())

    // another CNI is a reinstall, not a switch
    const other = await netctlJson(['backend', 'plan', 'flannel-vxlan', '--kubeconfig', kubeconfig])
    expect(other.code).toBe(4)
    expect(other.json.preflight.findings.map((f: {code: string}) => f.code)).toEqual(['BACKEND_FAMILY_CHANGE'])

    // and back to BGP: BIRD's routes again, and the vxlan.calico Felix leaves behind removed by netctl
    const back = await netctlJson(['backend', 'set', 'calico-bgp', '--kubeconfig', kubeconfig, '--yes'], {
      timeoutMs: 240_000,
    })
    expect(back.code, `${back.stderr} ${JSON.stringify(back.json?.message)} ${server.reactorErrors.join('; ')}`).toBe(0)
    expect(pool().spec).toMatchObject({ipipMode: 'Never', vxlanMode: 'Never'})
    expect(await routeGet(a!.netns, lab.get().pods.find((p) => p.node === b!.name)!.ip)).toMatchObject({gateway: b!.ip})
    for (const n of lab.get().nodes) expect(await linkNames(n.netns)).not.toContain('vxlan.calico')
    await expectAllPodsReachable(lab.get())
    expect(debugPods(server)).toEqual([])
  }, 300_000)
})
