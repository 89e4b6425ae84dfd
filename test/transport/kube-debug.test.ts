import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {createInterface} from 'node:readline'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {KubeApi} from '../../src/cluster/kube-api.js'
import type {KubePod} from '../../src/cluster/kube-types.js'
import {DEFAULT_DEBUG_IMAGE} from '../../src/defaults.js'
import {
  debugCommand,
  debugPodName,
  debugPodSpec,
  exitCodeOf,
  KubeDebugTransport,
  MANAGED_BY_LABEL,
  podStartProblem,
  RUN_ID_LABEL,
} from '../../src/transport/kube-debug.js'
import {TransportError} from '../../src/transport/types.js'
import {validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson, REPO} from '../helpers/cli.js'
import {KubeApiServer, readFixture} from '../helpers/kube-apiserver.js'
import {describeLab, ipJson, useLab} from '../helpers/lab.js'

const pod = (name: string): KubePod => readFixture(`pods/${name}`)[0] as unknown as KubePod

describe('reading a debug pod on its way up', () => {
  it('says nothing while it is being created or once it runs', () => {
    expect(podStartProblem(pod('container-creating'))).toBeUndefined()
    expect(podStartProblem(pod('running'))).toBeUndefined()
  })

  it("names an image that cannot be pulled, with the runtime's reason", () => {
    for (const name of ['errimagepull', 'imagepullbackoff']) {
      const p = pod(name)
      const waiting = p.status!.containerStatuses![0]!.state!.waiting!
      const problem = podStartProblem(p)!
      expect(problem.reason).toBe(waiting.reason)
      expect(problem.message).toContain(`cannot pull image ${p.spec!.containers![0]!.image}`)
      expect(problem.message).not.toContain('\n')
    }
    expect(podStartProblem(pod('errimagepull'))!.message).toContain('not found')
  })

  it('names what keeps a pod from being scheduled, or why its node refused it', () => {
    const unsched = pod('unschedulable')
    expect(podStartProblem(unsched)).toEqual({
      reason: 'Unschedulable',
      message: `cannot be scheduled: ${unsched.status!.conditions![0]!.message}`,
    })
    const rejected = pod('rejected-outofcpu')
    expect(podStartProblem(rejected)).toEqual({
      reason: rejected.status!.reason,
      message: `the pod ended (${rejected.status!.reason}): ${rejected.status!.message}`,
    })
  })

  it("reads the exit code from the error channel's Status", () => {
    expect(exitCodeOf({metadata: {}, status: 'Success'})).toEqual({code: 0})
    expect(
      exitCodeOf({
        status: 'Failure',
        reason: 'NonZeroExitCode',
        message: 'command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7',
        details: {causes: [{reason: 'ExitCode', message: '7'}]},
      }),
    ).toEqual({code: 7})
    expect(
      exitCodeOf({
        status: 'Failure',
        reason: 'InternalError',
        message:
          'Internal error occurred: error executing command in container: exec: "nsenter": executable file not found in $PATH',
        code: 500,
      }).code,
    ).toBe(126)
    expect(exitCodeOf(undefined).code).toBe(255)
  })

  it('builds the pod: pinned, host network and PID, privileged, every taint tolerated, bounded in time', () => {
    const spec = debugPodSpec({
      name: 'netctl-debug-a-1',
      namespace: 'ops',
      node: 'worker-1',
      image: DEFAULT_DEBUG_IMAGE,
      runId: 'r1',
      activeDeadlineSeconds: 600,
    })
    expect(spec.spec).toMatchObject({
      nodeName: 'worker-1',
      hostNetwork: true,
      hostPID: true,
      restartPolicy: 'Never',
      activeDeadlineSeconds: 600,
      tolerations: [{operator: 'Exists'}],
    })
    expect(spec.spec!.containers![0]!.securityContext).toEqual({privileged: true})
    expect(spec.metadata.labels).toMatchObject({[MANAGED_BY_LABEL]: 'netctl', [RUN_ID_LABEL]: 'r1'})
    expect(debugCommand()).toEqual(['nsenter', '-t', '1', '-m', '-u', '-n', '-i', 'sh', '-s'])
  })

  it('makes pod names the API accepts from any node name', () => {
    for (const node of [
      'worker-1',
      'ip-10-0-3-21.eu-west-1.compute.internal',
      'Node_With_CAPS',
      '-x-',
      'a'.repeat(200),
    ]) {
      const name = debugPodName(node)
      expect(name.length).toBeLessThanOrEqual(63)
      expect(name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/)
    }
  })
})

/** Poll until fn() holds (the API deletes pods asynchronously); fails after the bound. */
async function eventually(fn: () => boolean, what: string, boundMs = 15_000): Promise<void> {
  const until = Date.now() + boundMs
  while (!fn()) {
    if (Date.now() > until) throw new Error(`still not true after ${boundMs / 1000}s: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describeLab('--via debug-pod against a lab, through the API server emulator', () => {
  const lab = useLab('kub', ['--nodes', '2'])
  const BAD_IMAGE = 'docker.io/nicolaka/netshoot:v0.0-missing'
  let server: KubeApiServer
  let api: KubeApi
  let dir: string
  let kubeconfig: string
  const debugPods = (): Array<Record<string, any>> =>
    server.list('pods').filter((p) => p.metadata.labels?.[MANAGED_BY_LABEL] === 'netctl')

  beforeAll(async () => {
    server = await KubeApiServer.start({failingImages: [BAD_IMAGE]})
    server.seedFromLab(lab.get())
    dir = mkdtempSync(path.join(tmpdir(), 'netctl-kube-debug-'))
    kubeconfig = server.writeKubeconfig(path.join(dir, 'config'), {context: `lab-${lab.get().name}`})
    api = await KubeApi.connect({kubeconfig})
  })
  afterAll(async () => {
    await server?.close()
    if (dir) rmSync(dir, {recursive: true, force: true})
  })

  it("runs the script in the node the pod is pinned to: what it reads is that node's kernel state", async () => {
    for (const node of lab.get().nodes) {
      const t = new KubeDebugTransport({api, node: node.name})
      try {
        const addr = await t.exec('ip -j -4 addr show dev eth0')
        expect(addr.code).toBe(0)
        expect(JSON.parse(addr.stdout)[0].addr_info[0].local).toBe(node.ip)
        const routes = await t.exec('ip -j route show table main')
        expect(JSON.parse(routes.stdout)).toEqual(await ipJson(node.netns, ['route', 'show', 'table', 'main']))
      } finally {
        await t.close()
      }
    }
    // it went through pods/exec with the nsenter command line, as on a real cluster
    const exec = server.requests.filter((q) => q.resource === 'pods/exec')
    expect(exec.length).toBeGreaterThan(0)
    for (const q of exec)
      expect(new URL(q.path, 'https://x').searchParams.getAll('command').slice(0, 7)).toEqual([
        'nsenter',
        '-t',
        '1',
        '-m',
        '-u',
        '-n',
        '-i',
      ])
  })

  it('carries stdout, stderr, stdin and the exit code', async () => {
    const t = new KubeDebugTransport({api, node: lab.get().nodes[1]!.name})
    try {
      const r = await t.exec('echo out; echo err >&2; exit 3')
      expect(r).toEqual({stdout: 'out\n', stderr: 'err\n', code: 3})
      const cat = await t.exec('tr a-z A-Z', {stdin: "it's stdin\n"})
      expect(cat).toEqual({stdout: "IT'S STDIN\n", stderr: '', code: 0})
    } finally {
      await t.close()
    }
  })

  it('creates the pod as specified and deletes it on close', async () => {
    const node = lab.get().nodes[0]!
    const t = new KubeDebugTransport({api, node: node.name, activeDeadlineSeconds: 300})
    await t.exec('true')
    const where = (await t.pod())!
    const created = server.created.find((o) => o.metadata.name === where.name)!
    expect(created.spec).toMatchObject({
      nodeName: node.name,
      hostNetwork: true,
      hostPID: true,
      restartPolicy: 'Never',
      activeDeadlineSeconds: 300,
      tolerations: [{operator: 'Exists'}],
    })
    expect(created.spec.containers[0]).toMatchObject({image: DEFAULT_DEBUG_IMAGE, securityContext: {privileged: true}})
    expect(created.metadata.labels).toMatchObject({[MANAGED_BY_LABEL]: 'netctl', [RUN_ID_LABEL]: t.runId})
    expect(server.get('pods', where.namespace, where.name)?.status.phase).toBe('Running')
    await t.close()
    expect(server.get('pods', where.namespace, where.name)).toBeUndefined()
    await expect(t.exec('true')).rejects.toThrow(/transport is closed/)
  })

  it('gives up on a script at its deadline and says so; the pod stays usable', async () => {
    const t = new KubeDebugTransport({api, node: lab.get().nodes[0]!.name})
    try {
      const r = await t.exec('echo started; sleep 30', {timeoutMs: 1500})
      expect(r).toMatchObject({timedOut: true, code: 124})
      expect((await t.exec('echo again')).stdout).toBe('again\n')
    } finally {
      await t.close()
    }
  })

  it('speaks v4.channel.k8s.io too (servers before 1.30): stdin without the close frame', async () => {
    const old = await KubeApiServer.start({execProtocols: ['v4.channel.k8s.io']})
    try {
      old.seedFromLab(lab.get())
      const oldApi = await KubeApi.connect({kubeconfig: old.writeKubeconfig(path.join(dir, 'v4.yaml'))})
      const t = new KubeDebugTransport({api: oldApi, node: lab.get().nodes[0]!.name})
      try {
        expect(await t.exec('cat; exit 5', {stdin: 'through v4\n'})).toEqual({
          stdout: 'through v4\n',
          stderr: '',
          code: 5,
        })
      } finally {
        await t.close()
      }
    } finally {
      await old.close()
    }
  })

  it('an image that cannot be pulled is one clear line, and the pod is deleted', async () => {
    const t = new KubeDebugTransport({api, node: lab.get().nodes[0]!.name, image: BAD_IMAGE})
    const err = await t.exec('true').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(TransportError)
    const msg = (err as Error).message
    expect(msg).not.toContain('\n')
    expect(msg).toMatch(
      new RegExp(
        `^debug pod on node ${lab.get().nodes[0]!.name}: pod default/netctl-debug-\\S+ cannot pull image ${BAD_IMAGE.replace(/[.]/g, '\\.')} \\((ErrImagePull|ImagePullBackOff)`,
      ),
    )
    await eventually(() => debugPods().length === 0, 'the failed debug pod is deleted')
    await t.close()
  })

  it('a pod that does not start in time is one line saying where it stands, and is deleted', async () => {
    const t = new KubeDebugTransport({api, node: 'node-without-kubelet', startTimeoutMs: 1500})
    server.add({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {name: 'node-without-kubelet'},
      status: {conditions: [{type: 'Ready', status: 'True'}]},
    })
    server.stopKubelet('node-without-kubelet')
    const err = (await t.exec('true').catch((e: Error) => e)) as TransportError
    expect(err).toBeInstanceOf(TransportError)
    expect(err.reason).toBe('timeout')
    expect(err.message).toMatch(
      /^debug pod on node node-without-kubelet: pod default\/netctl-debug-node-without-kubelet-\S+ not Running after [\d.]+s: Pending \(no kubelet has taken it: is the node up\?\)$/,
    )
    await eventually(() => debugPods().length === 0, 'the pod that never started is deleted')
    await t.close()
  })

  it('a node that does not exist is one line, before any pod is made', async () => {
    const before = server.created.length
    const t = new KubeDebugTransport({api, node: 'node-that-is-not'})
    await expect(t.exec('true')).rejects.toThrow(
      'debug pod on node node-that-is-not: node "node-that-is-not" not found',
    )
    expect(server.created.length).toBe(before)
  })

  it('Forbidden is one line naming the verb and resource, for the pod and for pods/exec', async () => {
    const node = lab.get().nodes[0]!.name
    server.deny = [{verb: 'create', resource: 'pods'}]
    try {
      const t = new KubeDebugTransport({api, node})
      const err = (await t.exec('true').catch((e: Error) => e)) as TransportError
      expect(err.reason).toBe('refused')
      expect(err.message).toBe(
        `debug pod on node ${node}: Forbidden: user "${server.user}" may not create pods in namespace "default"; RBAC must allow verb "create" on resource "pods" (API group "")`,
      )
      expect(debugPods()).toEqual([])
    } finally {
      server.deny = []
    }
    server.deny = [{verb: 'create', resource: 'pods/exec'}]
    const t = new KubeDebugTransport({api, node})
    try {
      const err = (await t.exec('true').catch((e: Error) => e)) as TransportError
      expect(err).toBeInstanceOf(TransportError)
      expect(err.message).toMatch(
        /^debug pod on node \S+: Forbidden: user "[^"]+" may not create pods\/exec "netctl-debug-\S+" in namespace "default"; RBAC must allow verb "create" on resource "pods\/exec" \(API group ""\)$/,
      )
    } finally {
      server.deny = []
      await t.close()
    }
    await eventually(() => debugPods().length === 0, 'the debug pod is deleted on close after the error')
  })

  it('deletes its pod when the process gets SIGTERM or SIGINT', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(REPO, 'test/helpers/debug-pod-holder.ts'), kubeconfig, lab.get().nodes[1]!.name],
        {cwd: REPO, stdio: ['ignore', 'pipe', 'pipe']},
      )
      let stderr = ''
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
        child.once('exit', (code, sig) => resolve(sig ?? code)),
      )
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({input: child.stdout}).once('line', resolve)
        child.once('exit', () => reject(new Error(`holder exited early: ${stderr}`)))
      })
      const held = JSON.parse(line) as {namespace: string; name: string}
      expect(server.get('pods', held.namespace, held.name)?.status.phase).toBe('Running')
      child.kill(signal)
      // it dies of the same signal once the pod is deleted
      expect(await exited).toBe(signal)
      await eventually(
        () => server.get('pods', held.namespace, held.name) === undefined,
        `${held.name} deleted after ${signal}`,
      )
    }
  })

  it('netctl debug cleanup deletes the debug pods earlier runs left, and nothing else', async () => {
    const node = lab.get().nodes[0]!.name
    const leftovers = [
      new KubeDebugTransport({api, node}),
      new KubeDebugTransport({api, node: lab.get().nodes[1]!.name}),
    ]
    for (const t of leftovers) await t.start()
    const names = await Promise.all(leftovers.map(async (t) => (await t.pod())!.name))
    const others = server
      .list('pods')
      .filter((p) => !names.includes(p.metadata.name))
      .map((p) => p.metadata.name)

    const r = await netctl(['debug', 'cleanup', '--kubeconfig', kubeconfig])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('deleted 2 leftover debug pods in any namespace')
    for (const n of names) expect(r.stdout).toContain(n)
    await eventually(() => debugPods().length === 0, 'leftovers deleted')
    expect(
      server
        .list('pods')
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(others.sort())
    // closing the transports afterwards finds their pods gone, which is fine
    for (const t of leftovers) await t.close()

    const again = new KubeDebugTransport({api, node})
    await again.start()
    const j = await netctlJson(['debug', 'cleanup', '--kubeconfig', kubeconfig])
    expect(j.code).toBe(0)
    expect(validatorFor('debug-cleanup')(j.json)).toBe(true)
    expect(j.json.deleted).toEqual([
      expect.objectContaining({name: (await again.pod())!.name, node, runId: again.runId, phase: 'Running'}),
    ])
    await again.close()
    expect((await netctl(['debug', 'cleanup', '--kubeconfig', kubeconfig])).stdout.trim()).toBe(
      'no leftover debug pods in any namespace',
    )
  })
})
