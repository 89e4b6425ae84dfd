import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {EnvironmentError} from '../../errors.js'
import {backendCni, cniRunsFelix, cniRunsFlanneld} from '../../model/backends.js'
import {mapLimit} from '../../util/exec.js'
import {standaloneModule} from '../../util/paths.js'
import {shjoin} from '../../util/shell.js'
import {runScript} from '../netns-setup.js'
import type {ResponderPort} from '../responder.js'
import {NsScript} from '../script.js'
import type {LabNode, LabPlan} from '../types.js'
import {EXTERNAL_SERVICE_RANGE, type HostProfile, LAB_AGENT_DEFAULTS, type ProxyMode} from './defaults.js'
import {felixIpsets, felixIptables, felixWorkloadChains, felixWorkloadState} from './felix.js'
import {felixPolicyIpsetRestore} from './felix-policy.js'
import {bridgeHairpin, flannelIptables, flannelNftables} from './flanneld.js'
import {dockerIptables, dockerLink, firewalldNftables, hostSysctls, ufwIptables} from './host.js'
import {kubeProxyIptables, kubeProxyNftables} from './kube-proxy.js'
import {RestoreFile} from './restore.js'
import {type LabService, readyAddresses} from './services.js'

export interface LabAgents {
  proxyMode: ProxyMode
  hostProfile: HostProfile
}

/** A lab's agent settings; records written before agents existed have none: the defaults of their time. */
export function labAgents(plan: Pick<LabPlan, 'proxyMode' | 'hostProfile'>): LabAgents {
  return {proxyMode: plan.proxyMode ?? 'none', hostProfile: plan.hostProfile ?? 'plain'}
}

export {LAB_AGENT_DEFAULTS}

/**
 * The rule sets a lab's nodes carry, by owner: `host:docker`, `kube-proxy:iptables`,
 * `flanneld:nftables`, `felix:iptables`, ... The CNI agents' rules come with
 * kube-proxy (a lab with `--proxy-mode none` is a bare dataplane), and flanneld
 * programs the same backend as kube-proxy (EnableNFTables follows the proxy mode);
 * Felix always runs its iptables dataplane (FelixConfiguration default).
 */
export function labRuleSets(plan: Pick<LabPlan, 'proxyMode' | 'hostProfile' | 'backend'>): string[] {
  const {proxyMode, hostProfile} = labAgents(plan)
  const sets: string[] = []
  if (hostProfile !== 'plain') sets.push(`host:${hostProfile}`)
  if (proxyMode !== 'none') {
    sets.push(`kube-proxy:${proxyMode}`)
    const cni = backendCni(plan.backend)
    if (cniRunsFlanneld(cni)) sets.push(`flanneld:${proxyMode}`)
    if (cni === 'flannel') sets.push('cni-bridge:hairpin')
    if (cniRunsFelix(cni)) sets.push('felix:iptables')
  }
  return sets
}

/** What `lab up` / `lab status` report about a lab's agents. */
export interface LabAgentsView extends LabAgents {
  /** the rule sets installed on every node, by owner (see labRuleSets) */
  ruleSets: string[]
}

export function labAgentsView(plan: Pick<LabPlan, 'proxyMode' | 'hostProfile' | 'backend'>): LabAgentsView {
  return {...labAgents(plan), ruleSets: labRuleSets(plan)}
}

/**
 * What makes a Service's endpoints answer with the pod's name: one responder process in each endpoint
 * pod (src/lab/responder.ts) for all its target ports, UDP and TCP (socat's fork mode, which stood
 * here, loses answers). `lab up` is done once each port listens.
 */
function responders(s: NsScript, plan: LabPlan, services: readonly LabService[], logDir: string): void {
  const ports = new Map<LabPlan['pods'][number], ResponderPort[]>()
  for (const svc of services) {
    for (const port of svc.ports) {
      // SCTP is answered as TCP is (as socat's TCP listener answered it before)
      const protocol = port.protocol === 'UDP' ? 'udp' : 'tcp'
      for (const ip of readyAddresses(svc)) {
        const pod = plan.pods.find((p) => p.ip === ip)
        if (!pod || ports.get(pod)?.some((p) => p.port === port.targetPort && p.protocol === protocol)) continue
        ports.set(pod, [...(ports.get(pod) ?? []), {port: port.targetPort, protocol}])
      }
    }
  }
  if (ports.size === 0) return
  const m = standaloneModule('src/lab/responder.ts', import.meta.url)
  if (!m) throw new EnvironmentError("the lab's Service responder is missing: run 'npm run build'")
  for (const [pod, listens] of ports) {
    const argv = ['ip', 'netns', 'exec', pod.netns, 'setsid', '-f', process.execPath, ...m.execArgv, m.file, pod.name]
    const log = path.join(logDir, `responder-${pod.name}.log`)
    // detached, its output in its own log (not the script's pipe, which would otherwise stay open)
    const line = `${shjoin([...argv, ...listens.map((p) => `${p.port}/${p.protocol}`)])} </dev/null >>${shjoin([log])} 2>&1`
    // run from source, tsx is found from the checkout
    s.raw(m.execArgv.length > 0 ? `(cd ${shjoin([m.root])} && ${line})` : line)
  }
  // Node takes a moment to start: the lab is up once every port listens
  for (const [pod, listens] of ports)
    for (const {port, protocol} of listens) {
      const wait = `i=0; until ss -Hl${protocol === 'udp' ? 'u' : 't'}n 'sport = :${port}' | grep -q .; do i=$((i + 1)); if [ "$i" -gt 200 ]; then echo "the Service responder of ${pod.name} is not listening on ${port}/${protocol} after 10 s (see its log)" >&2; exit 1; fi; sleep 0.05; done`
      s.cmd('ip', 'netns', 'exec', pod.netns, 'sh', '-c', wait)
    }
}

/**
 * Install, in one node's namespace, what its host and agents program, in the
 * order a node boots: the host (Docker and ufw append to the built-in chains and set their policies),
 * kube-proxy (prepends its jumps), flanneld (appends), Felix (inserts at the
 * top, ChainInsertMode insert). Files land under the node's directory, so the
 * lab keeps a record of exactly what the kernel was given.
 */
export async function installAgents(plan: LabPlan, node: LabNode, scriptFile: string): Promise<string[]> {
  const {proxyMode, hostProfile} = labAgents(plan)
  const services = plan.services ?? []
  if (proxyMode === 'none' && hostProfile === 'plain') return []
  const dir = path.join(node.dir, 'agents')
  await mkdir(dir, {recursive: true})
  const put = async (name: string, text: string): Promise<string> => {
    const f = path.join(dir, name)
    await writeFile(f, text)
    return f
  }
  const s = new NsScript()
  hostSysctls(s, hostProfile)
  // A real node reaches ClusterIPs by its default route: kube-proxy's REJECT for a
  // Service without endpoints (and nft's drop of unallocated ClusterIPs) sit in
  // FORWARD/OUTPUT, after the routing decision. A flat lab's nodes have no default
  // route, so the Service CIDR gets one of its own on the uplink, and so do the Services'
  // external and load-balancer IPs (which a real node's own connections reach by it too).
  const sub = plan.subnets.find((x) => x.cidr === node.subnet)
  if (plan.serviceCIDR && !sub?.gateway) {
    s.ip('route', 'add', plan.serviceCIDR, 'dev', 'eth0')
    if (services.some((v) => v.externalIPs?.length || v.loadBalancerIPs?.length))
      s.ip('route', 'add', EXTERNAL_SERVICE_RANGE, 'dev', 'eth0')
  }
  if (hostProfile === 'docker') {
    dockerLink(s)
    const docker = dockerIptables()
    s.cmd('iptables-restore', '--noflush', await put('docker.rules', docker.restore.toString()))
    s.cmd('iptables', '-P', 'FORWARD', docker.forwardPolicy)
  }
  if (hostProfile === 'ufw') {
    const ufw = ufwIptables(plan)
    s.cmd('iptables-restore', '--noflush', await put('ufw.rules', ufw.restore.toString()))
    for (const [chain, policy] of ufw.policies) s.cmd('iptables', '-P', chain, policy)
  }
  if (proxyMode === 'iptables') {
    s.cmd(
      'iptables-restore',
      '--noflush',
      await put('kube-proxy.rules', kubeProxyIptables(plan, node, services).toString()),
    )
  } else if (proxyMode === 'nftables') {
    s.cmd('nft', '-f', await put('kube-proxy.nft', kubeProxyNftables(plan, node, services)))
  }
  if (proxyMode !== 'none') {
    // kube-proxy lets NodePorts answer on 127.0.0.1 (iptables mode) and Felix sets it on workloads
    if (proxyMode === 'iptables') s.sysctl('net.ipv4.conf.all.route_localnet', 1)
    const cni = backendCni(plan.backend)
    if (cniRunsFlanneld(cni)) {
      if (proxyMode === 'iptables')
        s.cmd('iptables-restore', '--noflush', await put('flanneld.rules', flannelIptables(plan, node).toString()))
      else s.cmd('nft', '-f', await put('flanneld.nft', flannelNftables(plan, node)))
    }
    if (cni === 'flannel') bridgeHairpin(s, plan, node)
    if (cniRunsFelix(cni)) {
      // Felix inserts its jumps at the top of the built-in chains: it comes after flanneld (Canal runs both)
      // the policy sets before the rules that match them (iptables-restore refuses a rule naming a set that does not exist)
      const policySets = felixWorkloadChains(new RestoreFile(), plan, node).ipsets
      s.cmd(
        'ipset',
        'restore',
        '-exist',
        '-file',
        await put('felix.ipset', felixIpsets(plan) + felixPolicyIpsetRestore(policySets)),
      )
      s.cmd('iptables-restore', '--noflush', await put('felix.rules', felixIptables(plan, node).toString()))
      felixWorkloadState(s, plan, node)
    }
    responders(
      s,
      plan,
      services.map((svc) => ({...svc, endpoints: svc.endpoints.filter((e) => e.nodeName === node.name)})),
      dir,
    )
  }
  if (hostProfile === 'firewalld') s.cmd('nft', '-f', await put('firewalld.nft', firewalldNftables(plan, node)))
  return runScript(node.netns, s, scriptFile, `${node.name} agents`)
}

/**
 * `lab policy apply | delete` on a lab whose Felix runs (Calico with agent
 * rules): each node's workload and policy chains rewritten with
 * iptables-restore --noflush (the declared chains are replaced whole), then
 * the cali-pi-/cali-po- chains no policy owns any more removed, as Felix's
 * table sync does. Flannel labs and bare dataplanes program nothing.
 */
export async function reprogramFelixPolicies(plan: LabPlan): Promise<boolean> {
  if (labAgents(plan).proxyMode === 'none' || !cniRunsFelix(backendCni(plan.backend))) return false
  // the nodes are independent: reprogrammed side by side, as each node's Felix does its own
  await mapLimit(plan.nodes, 4, async (node) => {
    const dir = path.join(node.dir, 'agents')
    await mkdir(dir, {recursive: true})
    const f = new RestoreFile()
    const {chains: keep, ipsets} = felixWorkloadChains(f, plan, node)
    const file = path.join(dir, 'felix-policy.rules')
    await writeFile(file, f.toString())
    const setsFile = path.join(dir, 'felix-policy.ipset')
    await writeFile(setsFile, felixPolicyIpsetRestore(ipsets))
    const s = new NsScript()
    // sets first (the rules name them), refilled with their members now
    s.cmd('ipset', 'restore', '-exist', '-file', setsFile)
    s.cmd('iptables-restore', '--noflush', file)
    s.raw(`keep=${shjoin([` ${keep.join(' ')} `])}`)
    s.raw(
      `for c in $(iptables -t filter -S | awk '$1 == "-N" && $2 ~ /^cali-p[io]-/ {print $2}'); do case "$keep" in *" $c "*) ;; *) iptables -t filter -F "$c"; iptables -t filter -X "$c";; esac; done`,
    )
    // then the policy sets no rule names any more, as Felix's ipset sync removes them
    s.raw(`sets=${shjoin([` ${ipsets.map((x) => x.name).join(' ')} `])}`)
    s.raw(
      `for x in $(ipset list -n | grep -E '^cali40[sn]:'); do case "$sets" in *" $x "*) ;; *) ipset destroy "$x";; esac; done`,
    )
    await runScript(node.netns, s, path.join(dir, 'felix-policy.sh'), `${node.name} felix policies`)
  })
  return true
}
