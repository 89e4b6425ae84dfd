import {existsSync} from 'node:fs'
import {mkdir} from 'node:fs/promises'
import path from 'node:path'

import {prefixLength} from '../analyze/ip.js'
import {LAB_READY_TIMEOUT_MS} from '../defaults.js'
import {classify, NetctlError, UsageError} from '../errors.js'
import {mapLimit} from '../util/exec.js'
import {installAgents} from './agents/index.js'
import {labBackend, podPlumbing} from './backends/index.js'
import {writeNodeFiles} from './files.js'
import {writeInventory} from './inventory.js'
import {addNetns, listNetns, loMarkArgs, netnsId, processesIn, processStart, runScript} from './netns-setup.js'
import {labPreflight} from './preflight.js'
import {NsScript} from './script.js'
import {startLabSsh} from './sshd.js'
import {saveRecord} from './state.js'
import {teardownLab} from './teardown.js'
import {defaultStateRoot, labNetnsNames, netnsPrefix, planLab, STATIC_UNDERLAY_NEIGH_ABOVE} from './topology.js'
import type {LabOptions, LabPlan, LabRecord} from './types.js'

export interface LabUpProgress {
  (step: string): void
}

const VERSION = '0.1.0'

/** Underlay bridges in the fabric namespace, one veth port per node (and the router's legs). */
function fabricScript(plan: LabPlan): NsScript {
  const s = new NsScript()
  s.ip(...loMarkArgs(plan.fabricNetns))
  for (const sub of plan.subnets) {
    s.ip('link', 'add', sub.bridge, 'type', 'bridge')
    s.ip('link', 'set', sub.bridge, 'up')
  }
  for (const node of plan.nodes) {
    const sub = plan.subnets.find((x) => x.cidr === node.subnet)!
    s.ip(
      'link',
      'add',
      node.fabricPort,
      'mtu',
      plan.underlayMTU,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'address',
      node.uplinkMAC,
      'mtu',
      plan.underlayMTU,
      'netns',
      node.netns,
    )
    s.ip('link', 'set', node.fabricPort, 'master', sub.bridge, 'up')
  }
  if (plan.routerNetns) {
    for (const [i, sub] of plan.subnets.entries()) {
      const port = `router-${'ab'[i]}`
      s.ip('link', 'add', port, 'type', 'veth', 'peer', 'name', `eth-${'ab'[i]}`, 'netns', plan.routerNetns)
      s.ip('link', 'set', port, 'master', sub.bridge, 'up')
    }
  }
  return s
}

/** The router joining the two underlay subnets of the routed topology. */
function routerScript(plan: LabPlan): NsScript {
  const s = new NsScript()
  s.ip(...loMarkArgs(plan.routerNetns!))
  for (const [i, sub] of plan.subnets.entries()) {
    s.ip('addr', 'add', `${sub.gateway}/${prefixLength(sub.cidr)}`, 'dev', `eth-${'ab'[i]}`)
    s.ip('link', 'set', `eth-${'ab'[i]}`, 'up')
  }
  s.sysctl('net.ipv4.ip_forward', 1)
  return s
}

/** Everything inside one node: uplink, forwarding, pods, and the backend's devices and per-peer state. */
function nodeScript(plan: LabPlan, nodeName: string): NsScript {
  const node = plan.nodes.find((n) => n.name === nodeName)!
  const backend = labBackend(plan.backend)
  const plumbing = podPlumbing(backend)
  const mtu = backend.podMTU(plan.underlayMTU)
  const s = new NsScript()
  s.ip(...loMarkArgs(node.netns))
  s.ip('addr', 'add', `${node.ip}/${prefixLength(node.subnet)}`, 'dev', 'eth0')
  s.ip('link', 'set', 'eth0', 'up')
  const sub = plan.subnets.find((x) => x.cidr === node.subnet)!
  if (sub.gateway) s.ip('route', 'add', 'default', 'via', sub.gateway, 'dev', 'eth0')
  s.sysctl('net.ipv4.ip_forward', 1)
  if (plan.nodes.length > STATIC_UNDERLAY_NEIGH_ABOVE) {
    for (const peer of plan.nodes) {
      if (peer.name !== node.name && peer.subnet === node.subnet)
        s.ip('neigh', 'replace', peer.ip, 'lladdr', peer.uplinkMAC, 'dev', 'eth0', 'nud', 'permanent')
    }
  }
  plumbing.nodeState(s, plan, node, mtu)
  for (const pod of plan.pods.filter((p) => p.node === node.name)) plumbing.pod(s, plan, node, pod, mtu)
  backend.nodeState(s, plan, node)
  return s
}

/**
 * `netctl lab up`: plan, then build fabric → router → nodes → pods → backend
 * state → daemons, recording the lab before the first namespace exists so
 * that `lab down` can always clean up. A failure tears down what was made.
 */
export async function labUp(
  options: LabOptions,
  progress: LabUpProgress = () => {},
  stateRoot = defaultStateRoot(),
): Promise<LabRecord> {
  const plan = planLab(options, stateRoot)
  await labPreflight(options)
  const existing = (await listNetns()).filter((n) => n.startsWith(netnsPrefix(plan.name)))
  if (existsSync(plan.stateDir) || existing.length > 0) {
    throw new UsageError(
      `lab '${plan.name}' already exists: run 'netctl lab down --name ${plan.name}' first, or pick another --name`,
      false,
    )
  }
  const backend = labBackend(plan.backend)
  const start = processStart(process.pid)
  const netnsIds: NonNullable<LabRecord['netnsIds']> = {}
  const record: LabRecord = {
    ...plan,
    status: 'creating',
    createdAt: new Date().toISOString(),
    warnings: [...(backend.warnings?.(plan) ?? [])],
    notes: [],
    version: VERSION,
    netnsIds,
    ...(start === undefined ? {} : {owner: {pid: process.pid, start}}),
  }
  if (plan.nodes.length > STATIC_UNDERLAY_NEIGH_ABOVE) {
    record.notes.push(
      `underlay neighbours are PERMANENT entries: with more than ${STATIC_UNDERLAY_NEIGH_ABOVE} nodes the kernel's shared ARP table (gc_thresh3) would overflow`,
    )
  }
  await saveRecord(record)
  // set on failure: workers still making namespaces stop, so that teardown sees them all
  let abandoned = false
  let saved = Promise.resolve()
  try {
    const scripts = path.join(plan.stateDir, 'scripts')
    await mkdir(scripts, {recursive: true})
    await mapLimit(plan.nodes, 8, (n) => mkdir(n.dir, {recursive: true}))

    progress(`creating ${1 + (plan.routerNetns ? 1 : 0) + plan.nodes.length + plan.pods.length} network namespaces`)
    // Each namespace's identity is on disk right after the namespace exists:
    // `lab down` trusts no namespace it cannot find there. Saves are chained so
    // that the last one written holds every identity.
    const persist = (): Promise<void> => (saved = saved.then(() => saveRecord(record)))
    await mapLimit(labNetnsNames(plan), 8, async (ns) => {
      if (abandoned) return
      await addNetns(ns)
      const id = netnsId(ns)
      if (!id) throw new NetctlError(`network namespace ${ns} vanished right after it was made`)
      netnsIds[ns] = id
      await persist()
    })

    progress(`wiring the ${plan.topology} underlay`)
    await runScript(plan.fabricNetns, fabricScript(plan), path.join(scripts, 'fabric.sh'), 'fabric set-up')
    if (plan.routerNetns)
      await runScript(plan.routerNetns, routerScript(plan), path.join(scripts, 'router.sh'), 'router set-up')

    progress(`configuring ${plan.nodes.length} nodes, ${plan.pods.length} pods, ${plan.backend}`)
    const warnings = await mapLimit(plan.nodes, 4, async (n) => {
      await writeNodeFiles(plan, n, backend)
      return runScript(n.netns, nodeScript(plan, n.name), path.join(scripts, `${n.name}.sh`), `${n.name} set-up`)
    })
    record.warnings.push(...warnings.flat())

    if (backend.start) {
      progress(`starting ${plan.backend} daemons`)
      await backend.start(plan)
    }
    if (plan.ssh) {
      progress('starting sshd on every node')
      await startLabSsh(plan)
    }
    if (backend.ready) {
      progress('waiting for the dataplane')
      record.warnings.push(...(await backend.ready(plan, LAB_READY_TIMEOUT_MS)))
    }
    if (plan.proxyMode !== 'none' || plan.hostProfile !== 'plain') {
      progress(`installing the agents' rules (kube-proxy ${plan.proxyMode}, host ${plan.hostProfile})`)
      const agentWarnings = await mapLimit(plan.nodes, 4, (n) =>
        installAgents(plan, n, path.join(scripts, `${n.name}-agents.sh`)),
      )
      record.warnings.push(...agentWarnings.flat())
    }
    await writeInventory(plan)
    // what the lab started, by PID and start time: lab down stops these even where a namespace's name and identity no longer lead to them
    record.processes = processesIn(new Map(Object.entries(netnsIds)))
    record.status = 'up'
    delete record.owner
    await saveRecord(record)
    return record
  } catch (error) {
    abandoned = true
    await saved.catch(() => {})
    record.status = 'failed'
    delete record.owner
    await saveRecord(record).catch(() => {})
    if (process.env.NETCTL_KEEP_FAILED_LAB !== '1') await teardownLab(plan.name, stateRoot).catch(() => {})
    if (error instanceof NetctlError) throw error
    // the step's own class kept: a path this machine cannot write is still environment
    throw new NetctlError(`lab up failed: ${(error as Error).message}`, classify(error).errorClass)
  }
}
