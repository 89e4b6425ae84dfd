import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {detectCni, parseNetConf} from '../../src/cluster/detect.js'
import {KubeCluster, nodeFacts} from '../../src/cluster/kube.js'
import {KubeApi, KubeApiError} from '../../src/cluster/kube-api.js'
import {loadKubeConfig, mergeKubeconfigs, parseKubeconfig} from '../../src/cluster/kube-config.js'
import {labInventory} from '../../src/lab/inventory.js'
import {planLab} from '../../src/lab/topology.js'
import {LAB_BACKENDS} from '../../src/lab/types.js'
import {backendCni} from '../../src/model/backends.js'
import {run} from '../../src/util/exec.js'
import {validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson, REPO} from '../helpers/cli.js'
import {KubeApiServer, readFixture} from '../helpers/kube-apiserver.js'

/** What a user sees on stderr: netctl's own lines, nothing else (no stack, no help hint). */
function stderrLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '')
}

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as {port: number}).port
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}

/** An environment with no kubeconfig anywhere and no in-cluster service account. */
function bareEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {HOME: home, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '', KUBERNETES_SERVICE_PORT: '', ...extra}
}

describe('kubeconfig, as kubectl reads it', () => {
  let server: KubeApiServer
  let dir: string
  beforeAll(async () => {
    server = await KubeApiServer.start()
    server.addFixture('workloads')
    dir = mkdtempSync(path.join(tmpdir(), 'netctl-kubeconfig-'))
  })
  afterAll(async () => {
    await server.close()
    rmSync(dir, {recursive: true, force: true})
  })

  /**
   * Two files in KUBECONFIG. The first defines the real cluster, user and a
   * context "dev"; the second defines its own "dev" (pointing nowhere: the
   * first file's must win), a context "ops" that uses the first file's
   * cluster and user, and a current-context that must lose to the first's.
   */
  function twoFiles(deadPort: number): {a: string; b: string} {
    const a = path.join(dir, 'a.yaml')
    const b = path.join(dir, 'b.yaml')
    server.writeKubeconfig(a, {context: 'dev', cluster: 'emu', user: 'emu-admin', namespace: 'shop'})
    writeFileSync(
      b,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{name: 'nowhere', cluster: {server: `https://127.0.0.1:${deadPort}`}}],
        users: [{name: 'nobody', user: {token: 'x'}}],
        contexts: [
          {name: 'dev', context: {cluster: 'nowhere', user: 'nobody'}},
          {name: 'ops', context: {cluster: 'emu', user: 'emu-admin', namespace: 'kube-system'}},
        ],
        'current-context': 'ops',
      }),
    )
    return {a, b}
  }

  it('merges several KUBECONFIG files: the first definition of a name and the first current-context win', async () => {
    const {a, b} = twoFiles(await closedPort())
    const env = {KUBECONFIG: `${a}${path.delimiter}${b}`}
    const cfg = await loadKubeConfig({env})
    expect(cfg.context).toBe('dev')
    expect(cfg.server).toBe(server.url)
    expect(cfg.namespace).toBe('shop')
    expect(cfg.files).toEqual([a, b])
    // the merged "dev" context reaches the emulator: it is the first file's
    const pod = await new KubeCluster(new KubeApi(cfg)).findPod('api-5b8f7c9d44-n2v6r')
    expect(pod).toMatchObject({namespace: 'shop', node: 'worker-2', ip: '10.244.2.9'})
  })

  it('--context picks a context from any of the files, and its namespace', async () => {
    const {a, b} = twoFiles(await closedPort())
    const cfg = await loadKubeConfig({env: {KUBECONFIG: `${a}${path.delimiter}${b}`}, context: 'ops'})
    expect(cfg).toMatchObject({context: 'ops', cluster: 'emu', namespace: 'kube-system'})
    const cluster = new KubeCluster(new KubeApi(cfg))
    expect((await cluster.findPod('coredns-7c65d6cfc9-8lq5w')).ip).toBe('10.244.1.3')
    // -n overrides the context's namespace
    const other = await loadKubeConfig({
      env: {KUBECONFIG: `${a}${path.delimiter}${b}`},
      context: 'ops',
      namespace: 'default',
    })
    expect(other.namespace).toBe('default')
  })

  it('runs as a user runs it, with KUBECONFIG holding two files and --context', async () => {
    const {a, b} = twoFiles(await closedPort())
    const r = await netctlJson(['debug', 'cleanup', '--context', 'ops'], {
      env: {KUBECONFIG: `${a}${path.delimiter}${b}`},
    })
    expect(r.code).toBe(0)
    expect(r.json).toEqual({namespace: 'all', deleted: [], failed: []})
    expect(validatorFor('debug-cleanup')(r.json)).toBe(true)
  })

  it('skips KUBECONFIG files that do not exist, as kubectl does', async () => {
    const {a} = twoFiles(await closedPort())
    const cfg = await loadKubeConfig({env: {KUBECONFIG: `${path.join(dir, 'missing.yaml')}${path.delimiter}${a}`}})
    expect(cfg.files).toEqual([a])
    expect(cfg.context).toBe('dev')
  })

  it('resolves relative certificate paths against the kubeconfig file, not the working directory', async () => {
    const sub = path.join(dir, 'rel')
    mkdirSync(sub, {recursive: true})
    writeFileSync(path.join(sub, 'ca.crt'), server.caPem)
    const file = path.join(sub, 'config')
    const cfg = server.kubeconfig({context: 'rel', noCA: true}) as {clusters: Array<{cluster: Record<string, unknown>}>}
    cfg.clusters[0]!.cluster['certificate-authority'] = 'ca.crt'
    writeFileSync(file, stringify(cfg))
    expect(parseKubeconfig(stringify(cfg), file).clusters[0]!.cluster).toMatchObject({
      'certificate-authority': path.join(sub, 'ca.crt'),
    })
    const api = await KubeApi.connect({kubeconfig: file})
    expect((await api.version()).gitVersion).toMatch(/^v1\./)
  })

  it('merges entries by name, first wins, for every kind', () => {
    const one = parseKubeconfig(
      stringify({
        clusters: [{name: 'c', cluster: {server: 'https://one'}}],
        contexts: [{name: 'x', context: {cluster: 'c'}}],
      }),
      '/one',
    )
    const two = parseKubeconfig(
      stringify({
        clusters: [
          {name: 'c', cluster: {server: 'https://two'}},
          {name: 'd', cluster: {server: 'https://d'}},
        ],
        'current-context': 'x',
      }),
      '/two',
    )
    const merged = mergeKubeconfigs([one, two])
    expect(merged.clusters.map((c) => (c.cluster as {server: string}).server)).toEqual(['https://one', 'https://d'])
    expect(merged['current-context']).toBe('x')
  })

  it('an unknown --context is one line naming the contexts there are, exit 2', async () => {
    const file = server.writeKubeconfig(path.join(dir, 'one.yaml'), {context: 'dev'})
    const r = await netctl(['debug', 'cleanup', '--kubeconfig', file, '--context', 'prod'])
    expect(r.code).toBe(2)
    expect(stderrLines(r.stderr)).toEqual([`netctl: context "prod" not found in kubeconfig ${file} (contexts: dev)`])
  })

  it('no kubeconfig at all is one line, exit 2', async () => {
    const home = mkdtempSync(path.join(dir, 'home-'))
    const r = await netctl(['debug', 'cleanup'], {env: bareEnv(home)})
    expect(r.code).toBe(2)
    const lines = stderrLines(r.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^netctl: no Kubernetes config: .*\.kube\/config does not exist/)
    const j = await netctlJson(['debug', 'cleanup'], {env: bareEnv(home)})
    expect(j.code).toBe(2)
    expect(j.json.error).toMatchObject({code: 'KUBECONFIG', exitCode: 2})
  })

  it('a --kubeconfig that does not exist, or is not YAML, is one line, exit 2', async () => {
    const missing = await netctl(['debug', 'cleanup', '--kubeconfig', path.join(dir, 'nope.yaml')])
    expect(missing.code).toBe(2)
    expect(stderrLines(missing.stderr)).toEqual([`netctl: kubeconfig ${path.join(dir, 'nope.yaml')}: no such file`])
    const bad = path.join(dir, 'bad.yaml')
    writeFileSync(bad, 'clusters: [\n  - name: x\n')
    const broken = await netctl(['debug', 'cleanup', '--kubeconfig', bad])
    expect(broken.code).toBe(2)
    expect(stderrLines(broken.stderr)).toHaveLength(1)
    expect(broken.stderr).toMatch(/not valid YAML/)
  })

  it('an API server nobody answers at is one line, exit 3', async () => {
    const port = await closedPort()
    const file = server.writeKubeconfig(path.join(dir, 'dead.yaml'), {
      context: 'dead',
      server: `https://127.0.0.1:${port}`,
    })
    const r = await netctl(['debug', 'cleanup', '--kubeconfig', file])
    expect(r.code).toBe(3)
    expect(stderrLines(r.stderr)).toEqual([
      `netctl: cannot reach the Kubernetes API server at https://127.0.0.1:${port} (context dead): connection refused`,
    ])
  })

  it('a server certificate the kubeconfig does not trust is one line, exit 3', async () => {
    const file = server.writeKubeconfig(path.join(dir, 'untrusted.yaml'), {context: 'untrusted', noCA: true})
    const r = await netctl(['debug', 'cleanup', '--kubeconfig', file])
    expect(r.code).toBe(3)
    expect(stderrLines(r.stderr)).toHaveLength(1)
    expect(r.stderr).toMatch(/TLS: the server's certificate is self-signed/)
  })

  it('a wrong or expired token is one line naming 401 and the credentials, exit 3', async () => {
    const file = server.writeKubeconfig(path.join(dir, 'badtoken.yaml'), {context: 'stale', token: 'expired-token'})
    const r = await netctl(['debug', 'cleanup', '--kubeconfig', file])
    expect(r.code).toBe(3)
    const lines = stderrLines(r.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/401 Unauthorized/)
    expect(lines[0]).toMatch(/credentials of context stale/)
    // the server really answered 401 with a Status
    expect(server.requests.some((q) => q.code === 401)).toBe(true)
  })

  it('Forbidden is one line naming the verb and resource RBAC must allow, exit 3', async () => {
    server.deny.push({verb: 'list', resource: 'pods'})
    try {
      const file = server.writeKubeconfig(path.join(dir, 'rbac.yaml'), {context: 'limited'})
      const r = await netctl(['debug', 'cleanup', '--kubeconfig', file])
      expect(r.code).toBe(3)
      expect(stderrLines(r.stderr)).toEqual([
        `netctl: Forbidden: user "${server.user}" may not list pods at the cluster scope; RBAC must allow verb "list" on resource "pods" (API group "")`,
      ])
      const j = await netctlJson(['debug', 'cleanup', '--kubeconfig', file, '-n', 'shop'])
      expect(j.json.error).toMatchObject({code: 'FORBIDDEN', exitCode: 3})
      expect(j.json.error.message).toContain('in namespace "shop"')
    } finally {
      server.deny = []
    }
  })

  it('names the group too, for a forbidden resource outside the core group', async () => {
    server.deny.push({verb: 'list', resource: 'daemonsets'})
    try {
      const api = new KubeApi(await loadKubeConfig({kubeconfig: server.writeKubeconfig(path.join(dir, 'ds.yaml'))}))
      const err = await new KubeCluster(api).detect().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(KubeApiError)
      expect((err as KubeApiError).message).toMatch(
        /may not list daemonsets at the cluster scope; RBAC must allow verb "list" on resource "daemonsets" \(API group "apps"\)/,
      )
    } finally {
      server.deny = []
    }
  })

  it('uses the service account when it runs in a pod and there is no kubeconfig', async () => {
    const root = mkdtempSync(path.join(dir, 'pod-'))
    const sa = path.join(root, 'var/run/secrets/kubernetes.io/serviceaccount')
    mkdirSync(sa, {recursive: true})
    writeFileSync(path.join(sa, 'token'), server.token)
    writeFileSync(path.join(sa, 'ca.crt'), server.caPem)
    writeFileSync(path.join(sa, 'namespace'), 'shop')
    const port = new URL(server.url).port
    const env = bareEnv(mkdtempSync(path.join(dir, 'home-')), {
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: port,
    })
    const cfg = await loadKubeConfig({env, serviceAccountRoot: root})
    expect(cfg).toMatchObject({source: 'in-cluster', namespace: 'shop', server: server.url})
    const cluster = new KubeCluster(new KubeApi(cfg))
    expect((await cluster.findPod('api-5b8f7c9d44-n2v6r')).node).toBe('worker-2')
  })

  it('is a kubectl plugin: bin/kubectl-netctl runs the same CLI', async () => {
    const file = server.writeKubeconfig(path.join(dir, 'plugin.yaml'))
    const {NODE_ENV: _n, ...env} = process.env
    const r = await run(path.join(REPO, 'bin/kubectl-netctl'), ['debug', 'cleanup', '--kubeconfig', file, '--json'], {
      env: {...env, NO_COLOR: '1'},
    })
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({namespace: 'all', deleted: [], failed: []})
  })
})

describe('pods and nodes from the API', () => {
  let server: KubeApiServer
  let cluster: KubeCluster
  let dir: string
  beforeAll(async () => {
    server = await KubeApiServer.start()
    server.addFixture('workloads')
    dir = mkdtempSync(path.join(tmpdir(), 'netctl-kube-pods-'))
    cluster = await KubeCluster.connect({kubeconfig: server.writeKubeconfig(path.join(dir, 'config'))})
  })
  afterAll(async () => {
    await server.close()
    rmSync(dir, {recursive: true, force: true})
  })

  const fixturePod = (ns: string, name: string) =>
    readFixture('workloads').find((o) => o.kind === 'Pod' && o.metadata.namespace === ns && o.metadata.name === name)!

  it('finds a pod by name in the context namespace, and by ns/name anywhere', async () => {
    const web = fixturePod('default', 'web-6d4cf56db6-x7k2p')
    expect(await cluster.findPod('web-6d4cf56db6-x7k2p')).toMatchObject({
      namespace: 'default',
      node: web.spec.nodeName,
      ip: web.status.podIP,
      hostNetwork: false,
    })
    const dns = fixturePod('kube-system', 'coredns-7c65d6cfc9-8lq5w')
    expect(await cluster.findPod('kube-system/coredns-7c65d6cfc9-8lq5w')).toMatchObject({
      node: dns.spec.nodeName,
      ip: dns.status.podIP,
    })
  })

  it('finds a pod by IP, past a finished pod that once had the same address', async () => {
    const api = fixturePod('shop', 'api-5b8f7c9d44-n2v6r')
    expect(await cluster.findPod(api.status.podIP)).toMatchObject({namespace: 'shop', name: 'api-5b8f7c9d44-n2v6r'})
    // the lookup went through the API's field selector, not a full list filtered here
    expect(server.requests.some((q) => q.path.includes(`fieldSelector=status.podIP%3D${api.status.podIP}`))).toBe(true)
  })

  it("says when an IP is a node address and not a pod, or nobody's", async () => {
    const proxy = fixturePod('kube-system', 'kube-proxy-4mq8c')
    await expect(cluster.findPod(proxy.status.podIP)).rejects.toThrow(
      `${proxy.status.podIP} is a node's address (host-network pods use it), not a pod's`,
    )
    await expect(cluster.findPod('10.244.9.9')).rejects.toThrow('no pod has IP 10.244.9.9')
  })

  it('a pod that is not there is a usage error naming where it looked', async () => {
    await expect(cluster.findPod('api-5b8f7c9d44-n2v6r')).rejects.toMatchObject({
      exitCode: 2,
      message: 'pod "api-5b8f7c9d44-n2v6r" not found in namespace "default" (name another namespace as ns/name)',
    })
    await expect(cluster.findPod('a/b/c')).rejects.toMatchObject({exitCode: 2})
  })

  it('reads nodes with InternalIP, podCIDR and the flannel annotations decoded', async () => {
    const nodes = await cluster.nodes()
    const fixtures = readFixture('workloads').filter((o) => o.kind === 'Node')
    expect(nodes.map((n) => n.name)).toEqual(fixtures.map((f) => f.metadata.name).sort())
    for (const f of fixtures) {
      const n = nodes.find((x) => x.name === f.metadata.name)!
      const data = JSON.parse(f.metadata.annotations['flannel.alpha.coreos.com/backend-data'])
      expect(n).toMatchObject({internalIP: f.status.addresses[0].address, podCIDR: f.spec.podCIDR, ready: true})
      expect(n.flannel).toEqual({
        backendType: 'vxlan',
        vtepMAC: data.VtepMAC,
        vni: data.VNI,
        publicIP: f.metadata.annotations['flannel.alpha.coreos.com/public-ip'],
      })
    }
    expect(nodes.find((n) => n.name === 'worker-2')).toMatchObject({
      externalIP: '203.0.113.22',
      taints: [{key: 'node.kubernetes.io/disk-pressure', effect: 'NoSchedule'}],
    })
  })

  it('decodes Calico node annotations', () => {
    const n = nodeFacts({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: 'rr-1',
        annotations: {
          'projectcalico.org/IPv4Address': '10.0.3.31/24',
          'projectcalico.org/IPv4IPIPTunnelAddr': '192.168.77.0',
          'projectcalico.org/IPv4VXLANTunnelAddr': '192.168.77.1',
          'projectcalico.org/ASNumber': '64512',
          'projectcalico.org/RouteReflectorClusterID': '244.0.0.1',
        },
      },
    })
    expect(n.calico).toEqual({
      ipv4Address: '10.0.3.31/24',
      ipipTunnelAddr: '192.168.77.0',
      vxlanTunnelAddr: '192.168.77.1',
      asNumber: 64512,
      routeReflectorClusterID: '244.0.0.1',
    })
    expect(n.flannel).toBeUndefined()
  })

  it('turns the cluster into an inventory: overlay pods only, cluster CIDR from net-conf.json', async () => {
    server.addFixture('flannel')
    const inv = await cluster.inventory()
    expect(inv.cluster).toMatchObject({
      backend: 'flannel-vxlan',
      clusterCIDR: '10.244.0.0/16',
      cni: 'flannel',
      source: 'kubernetes',
    })
    const nodes = readFixture('workloads').filter((o) => o.kind === 'Node')
    expect(inv.nodes.map((n) => ({name: n.name, internalIP: n.internalIP, podCIDR: n.podCIDR}))).toEqual(
      nodes.map((f) => ({name: f.metadata.name, internalIP: f.status.addresses[0].address, podCIDR: f.spec.podCIDR})),
    )
    expect(inv.nodes[0]!.annotations).toEqual(nodes[0]!.metadata.annotations)
    expect(inv.nodes.find((n) => n.name === 'worker-2')?.externalIP).toBe('203.0.113.22')
    expect(validatorFor('inventory')(inv)).toBe(true)
    const overlay = readFixture('workloads').filter(
      (o) => o.kind === 'Pod' && !o.spec.hostNetwork && o.status.phase === 'Running',
    )
    expect(inv.pods.map((p) => `${p.namespace}/${p.name}@${p.node}=${p.ip}`).sort()).toEqual(
      overlay.map((o) => `${o.metadata.namespace}/${o.metadata.name}@${o.spec.nodeName}=${o.status.podIP}`).sort(),
    )
  })
})

describe('CNI and backend detection', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'netctl-detect-'))
  })
  afterAll(() => rmSync(dir, {recursive: true, force: true}))

  /** A fresh API server with these fixtures, and a client for it. */
  async function clusterWith(
    ...fixtures: string[]
  ): Promise<{server: KubeApiServer; cluster: KubeCluster; api: KubeApi}> {
    const server = await KubeApiServer.start()
    for (const f of fixtures) server.addFixture(f)
    const api = await KubeApi.connect({
      kubeconfig: server.writeKubeconfig(path.join(dir, `${fixtures.join('-') || 'none'}.yaml`)),
    })
    return {server, api, cluster: new KubeCluster(api)}
  }

  it('flannel: the backend, VNI and port from kube-flannel-cfg, also as the ConfigMap is patched', async () => {
    const {server, api, cluster} = await clusterWith('flannel', 'workloads')
    try {
      let d = await cluster.detect()
      expect(d).toMatchObject({cni: 'flannel', backend: 'flannel-vxlan', supported: true})
      expect(d.details.flannel).toMatchObject({
        configMap: 'kube-flannel/kube-flannel-cfg',
        netConf: {network: '10.244.0.0/16', backendType: 'vxlan', vni: 1, port: 8472, directRouting: false},
      })
      const cm = '/api/v1/namespaces/kube-flannel/configmaps/kube-flannel-cfg'
      const netConf = (backend: object) => ({
        data: {'net-conf.json': JSON.stringify({Network: '10.244.0.0/16', Backend: backend})},
      })

      await api.patch(cm, netConf({Type: 'vxlan', VNI: 4096, Port: 4789, DirectRouting: true}), 'merge')
      d = await cluster.detect()
      expect(d.details.flannel?.netConf).toMatchObject({
        backendType: 'vxlan',
        vni: 4096,
        port: 4789,
        directRouting: true,
      })

      await api.patch(cm, netConf({Type: 'host-gw'}), 'strategic')
      d = await cluster.detect()
      expect(d).toMatchObject({cni: 'flannel', backend: 'flannel-host-gw', supported: true})
      // the nodes still carry vxlan annotations: flanneld has not been restarted since
      expect(d.details.notes.some((n) => n.includes('net-conf.json says host-gw but nodes are annotated vxlan'))).toBe(
        true,
      )

      await api.patch(cm, netConf({Type: 'udp'}), 'merge')
      d = await cluster.detect()
      expect(d).toMatchObject({backend: 'flannel-udp', supported: true})
      expect(d.details.flannel?.netConf).toMatchObject({backendType: 'udp', port: 8285})

      await api.patch(cm, netConf({Type: 'wireguard'}), 'merge')
      expect(await cluster.detect()).toMatchObject({cni: 'flannel', backend: 'flannel-wireguard', supported: false})
    } finally {
      await server.close()
    }
  })

  it('flannel defaults to udp when net-conf.json names no backend, as flanneld does', () => {
    expect(parseNetConf('{"Network": "10.244.0.0/16"}')).toEqual({
      network: '10.244.0.0/16',
      backendType: 'udp',
      port: 8285,
    })
  })

  it('calico: IPIP Always, then CrossSubnet, VXLAN, plain BGP, as the IPPool is patched', async () => {
    const {server, api, cluster} = await clusterWith('calico')
    try {
      let d = await cluster.detect()
      expect(d).toMatchObject({cni: 'calico', backend: 'calico-ipip', supported: true})
      expect(d.details.calico).toMatchObject({
        networkingBackend: 'bird',
        poolsFrom: 'ippools',
        pools: [
          {
            name: 'default-ipv4-ippool',
            cidr: '192.168.0.0/16',
            ipipMode: 'Always',
            vxlanMode: 'Never',
            natOutgoing: true,
          },
        ],
        bgp: {enabled: true, nodeToNodeMesh: true, asNumber: 64512, peers: []},
      })
      const pool = '/apis/crd.projectcalico.org/v1/ippools/default-ipv4-ippool'
      // a custom resource takes no strategic merge patch: the server says so (415)
      await expect(api.patch(pool, {spec: {ipipMode: 'CrossSubnet'}}, 'strategic')).rejects.toMatchObject({
        httpStatus: 415,
      })

      await api.patch(pool, {spec: {ipipMode: 'CrossSubnet'}}, 'merge')
      d = await cluster.detect()
      expect(d.backend).toBe('calico-ipip')
      expect(d.details.calico?.pools[0]).toMatchObject({ipipMode: 'CrossSubnet'})

      await api.patch(
        pool,
        [
          {op: 'replace', path: '/spec/ipipMode', value: 'Never'},
          {op: 'replace', path: '/spec/vxlanMode', value: 'Always'},
        ],
        'json',
      )
      expect(await cluster.detect()).toMatchObject({backend: 'calico-vxlan', supported: true})

      await api.patch(pool, {spec: {vxlanMode: 'Never'}}, 'merge')
      d = await cluster.detect()
      expect(d).toMatchObject({backend: 'calico-bgp'})
      expect(d.details.calico?.bgp.nodeToNodeMesh).toBe(true)
    } finally {
      await server.close()
    }
  })

  it('calico: route reflectors when the mesh is off and nodes peer with the RRs', async () => {
    const {server, api, cluster} = await clusterWith('calico')
    try {
      await api.patch(
        '/apis/crd.projectcalico.org/v1/ippools/default-ipv4-ippool',
        {spec: {ipipMode: 'Never'}},
        'merge',
      )
      await api.patch(
        '/apis/crd.projectcalico.org/v1/bgpconfigurations/default',
        {spec: {nodeToNodeMeshEnabled: false}},
        'merge',
      )
      const peer = readFixture('calico-rr').find((o) => o.kind === 'BGPPeer')!
      await api.create('/apis/crd.projectcalico.org/v1/bgppeers', peer)
      server.add({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: 'rr-1',
          labels: {'route-reflector': 'true'},
          annotations: {'projectcalico.org/RouteReflectorClusterID': '244.0.0.1'},
        },
      })
      const d = await cluster.detect()
      expect(d).toMatchObject({cni: 'calico', backend: 'calico-rr', supported: true})
      expect(d.details.calico?.bgp).toMatchObject({
        nodeToNodeMesh: false,
        peers: [{name: peer.metadata.name, nodeSelector: peer.spec.nodeSelector, peerSelector: peer.spec.peerSelector}],
        routeReflectors: [{node: 'rr-1', clusterID: '244.0.0.1'}],
      })
    } finally {
      await server.close()
    }
  })

  it('calico without IPPool objects takes the pool modes from calico-node env', () => {
    const objs = readFixture('calico')
    const d = detectCni({
      daemonSets: objs.filter((o) => o.kind === 'DaemonSet') as never,
      configMaps: objs.filter((o) => o.kind === 'ConfigMap') as never,
      networkPolicies: [],
      nodes: [],
    })
    expect(d).toMatchObject({cni: 'calico', backend: 'calico-ipip'})
    expect(d.details.calico).toMatchObject({poolsFrom: 'env', pools: [{ipipMode: 'Always', vxlanMode: 'Never'}]})
  })

  it('canal: Calico policy over flannel vxlan, from canal-config', async () => {
    const {server, cluster} = await clusterWith('canal', 'workloads')
    try {
      const d = await cluster.detect()
      expect(d).toMatchObject({cni: 'canal', backend: 'flannel-vxlan', supported: true})
      // the inventory keeps the CNI: flannel's dataplane, but policies are enforced
      expect((await cluster.inventory(d)).cluster).toMatchObject({backend: 'flannel-vxlan', cni: 'canal'})
      expect(d.details.flannel).toMatchObject({configMap: 'kube-system/canal-config', netConf: {backendType: 'vxlan'}})
      expect(d.details.calico?.networkingBackend).toBe('none')
      expect(d.details.daemonSets).toEqual([expect.objectContaining({name: 'canal', cni: 'canal'})])
    } finally {
      await server.close()
    }
  })

  it('weave and romana are recognised and reported as not supported', async () => {
    for (const cni of ['weave', 'romana'] as const) {
      const {server, cluster} = await clusterWith(cni)
      try {
        const d = await cluster.detect()
        expect(d).toMatchObject({cni, backend: 'unknown', supported: false})
        expect(d.details.notes).toContain(
          `${cni} is recognised but not supported: netctl cannot trace or check its dataplane`,
        )
      } finally {
        await server.close()
      }
    }
  })

  it('no CNI it knows is unknown, not a guess', async () => {
    const {server, cluster} = await clusterWith('workloads')
    try {
      // the nodes carry flannel annotations: embedded flannel (k3s) with no DaemonSet
      expect(await cluster.detect()).toMatchObject({cni: 'flannel', backend: 'flannel-vxlan'})
    } finally {
      await server.close()
    }
    const empty = await clusterWith()
    try {
      expect(await empty.cluster.detect()).toMatchObject({cni: 'unknown', backend: 'unknown', supported: false})
    } finally {
      await empty.server.close()
    }
  })

  it('reads NetworkPolicies in every namespace', async () => {
    const {server, cluster} = await clusterWith('calico', 'network-policies')
    try {
      server.add({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: {name: 'deny-egress', namespace: 'shop'},
        spec: {podSelector: {matchLabels: {app: 'api'}}, policyTypes: ['Egress']},
      })
      const d = await cluster.detect()
      const fixtures = readFixture('network-policies')
      expect(d.networkPolicies.map((p) => `${p.namespace}/${p.name}`)).toEqual([
        ...fixtures.map((f) => `${f.metadata.namespace}/${f.metadata.name}`).sort(),
        'shop/deny-egress',
      ])
      const allow = fixtures.find((f) => f.metadata.name === 'allow-frontend-to-backend')!
      expect(d.networkPolicies.find((p) => p.name === allow.metadata.name)).toMatchObject({
        podSelector: allow.spec.podSelector,
        policyTypes: allow.spec.policyTypes,
        ingressRules: allow.spec.ingress.length,
        egressRules: allow.spec.egress.length,
      })
      expect(
        server.requests.some((q) => q.method === 'GET' && q.path === '/apis/networking.k8s.io/v1/networkpolicies'),
      ).toBe(true)
    } finally {
      await server.close()
    }
  })
})

describe('the API server emulator speaks the wire format', () => {
  let server: KubeApiServer
  let api: KubeApi
  let dir: string
  beforeAll(async () => {
    server = await KubeApiServer.start()
    server.addFixture('workloads')
    server.addFixture('calico')
    dir = mkdtempSync(path.join(tmpdir(), 'netctl-emulator-'))
    api = await KubeApi.connect({kubeconfig: server.writeKubeconfig(path.join(dir, 'config'))})
  })
  afterAll(async () => {
    await server.close()
    rmSync(dir, {recursive: true, force: true})
  })

  it('lists as kube-apiserver does: a List kind with a resourceVersion, built-in items without kind, custom ones with it', async () => {
    const pods = await api.list('/api/v1/namespaces/default/pods')
    expect(pods).toMatchObject({
      apiVersion: 'v1',
      kind: 'PodList',
      metadata: {resourceVersion: expect.stringMatching(/^\d+$/)},
    })
    expect(pods.items.length).toBeGreaterThan(0)
    for (const p of pods.items) {
      expect(p).not.toHaveProperty('kind')
      expect(p.metadata).toMatchObject({
        uid: expect.any(String),
        resourceVersion: expect.any(String),
        creationTimestamp: expect.stringMatching(/Z$/),
      })
    }
    const pools = await api.list('/apis/crd.projectcalico.org/v1/ippools')
    expect(pools.kind).toBe('IPPoolList')
    expect(pools.items[0]).toMatchObject({apiVersion: 'crd.projectcalico.org/v1', kind: 'IPPool'})
  })

  it('answers errors with Status objects', async () => {
    const notFound = await api.get('/api/v1/namespaces/default/pods/nope').catch((e: KubeApiError) => e)
    expect((notFound as KubeApiError).status).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "nope" not found',
      reason: 'NotFound',
      details: {name: 'nope', kind: 'pods'},
      code: 404,
    })
    const exists = await api
      .create('/api/v1/namespaces/default/configmaps', {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {name: 'kube-root-ca.crt'},
      })
      .then(() =>
        api.create('/api/v1/namespaces/default/configmaps', {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: {name: 'kube-root-ca.crt'},
        }),
      )
      .catch((e: KubeApiError) => e)
    expect((exists as KubeApiError).status).toMatchObject({
      reason: 'AlreadyExists',
      code: 409,
      details: {name: 'kube-root-ca.crt', kind: 'configmaps'},
    })
  })

  it('streams a watch as lines of {type, object}, resuming after a resourceVersion', async () => {
    const list = await api.list('/api/v1/namespaces/default/configmaps')
    const seen: string[] = []
    const watching = api.watch(
      '/api/v1/namespaces/default/configmaps',
      {resourceVersion: list.metadata.resourceVersion},
      (ev) => {
        seen.push(
          `${ev.type} ${ev.object.metadata.name} ${(ev.object as {data?: Record<string, string>}).data?.k ?? ''}`.trim(),
        )
        return ev.type === 'DELETED'
      },
      {timeoutMs: 10_000},
    )
    await api.create('/api/v1/namespaces/default/configmaps', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {name: 'w'},
      data: {k: '1'},
    })
    await api.patch('/api/v1/namespaces/default/configmaps/w', {data: {k: '2'}}, 'strategic')
    const deleted = await api.delete<{kind: string; status: string}>('/api/v1/namespaces/default/configmaps/w')
    expect(deleted).toMatchObject({kind: 'Status', status: 'Success'})
    expect(await watching).toBe('stopped')
    expect(seen).toEqual(['ADDED w 1', 'MODIFIED w 2', 'DELETED w 2'])
  })

  it('strategic merge patch merges containers by name', async () => {
    const ds = '/apis/apps/v1/namespaces/kube-system/daemonsets/calico-node'
    const before = await api.get<any>(ds)
    const patched = await api.patch<any>(
      ds,
      {
        spec: {
          template: {
            spec: {containers: [{name: 'calico-node', env: [{name: 'FELIX_LOGSEVERITYSCREEN', value: 'debug'}]}]},
          },
        },
      },
      'strategic',
    )
    const c = patched.spec.template.spec.containers.find((x: {name: string}) => x.name === 'calico-node')
    expect(c.image).toBe(before.spec.template.spec.containers[0].image)
    expect(c.env.map((e: {name: string}) => e.name)).toEqual([
      ...before.spec.template.spec.containers[0].env.map((e: {name: string}) => e.name),
      'FELIX_LOGSEVERITYSCREEN',
    ])
    expect(Number(patched.metadata.generation)).toBe(Number(before.metadata.generation) + 1)
  })
})

describe('an emulator seeded from a lab inventory', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'netctl-seed-'))
  })
  afterAll(() => rmSync(dir, {recursive: true, force: true}))

  // the lab planner is pure: its inventory is the one `lab up` would write, no namespaces needed
  it.each(LAB_BACKENDS)(
    "%s: detection names the lab's backend, and the cluster reads back as the lab's inventory",
    async (backend) => {
      const plan = planLab(
        {name: 'kub-plan', nodes: 3, podsPerNode: 1, backend, topology: 'flat', routeReflectors: 1, ssh: false},
        dir,
      )
      const inv = labInventory(plan)
      const file = path.join(dir, `${backend}.yaml`)
      writeFileSync(file, stringify(inv))
      const server = await KubeApiServer.start()
      try {
        server.seedFromLab(file)
        const cluster = await KubeCluster.connect({
          kubeconfig: server.writeKubeconfig(path.join(dir, `${backend}.kubeconfig`)),
        })
        const d = await cluster.detect()
        // Kubernetes names Canal's dataplane by flannel's backend (what `backend set` switches there), its CNI canal
        const named = backend === 'canal' ? 'flannel-vxlan' : backend
        expect(d).toMatchObject({cni: backendCni(backend), backend: named, supported: true})
        const back = await cluster.inventory(d)
        const valid = validatorFor('inventory')
        expect(valid(back), JSON.stringify(valid.errors)).toBe(true)
        expect(back.cluster).toMatchObject({
          backend: named,
          cni: inv.cluster.cni,
          clusterCIDR: inv.cluster.clusterCIDR,
          source: 'kubernetes',
        })
        expect(
          back.nodes.map(({name, internalIP, podCIDR, annotations}) => ({name, internalIP, podCIDR, annotations})),
        ).toEqual(
          inv.nodes.map(({name, internalIP, podCIDR, annotations}) => ({name, internalIP, podCIDR, annotations})),
        )
        expect(back.pods.map(({labels: _labels, ...p}) => p)).toEqual(
          inv.pods
            .map(({name, namespace, node, ip}) => ({name, namespace, node, ip}))
            .sort((a, b) => a.name.localeCompare(b.name)),
        )
        // each pod's labels as the API holds them (what NetworkPolicy selectors match)
        for (const p of back.pods) expect(p.labels).toEqual(server.get('pods', p.namespace, p.name)!.metadata.labels)
        if (backend === 'calico-rr') {
          expect(d.details.calico?.bgp.routeReflectors.map((r) => r.node)).toEqual(
            plan.nodes.filter((n) => n.routeReflector).map((n) => n.name),
          )
        }
      } finally {
        await server.close()
      }
    },
  )
})
