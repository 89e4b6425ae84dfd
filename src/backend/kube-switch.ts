import type {KubeApi} from '../cluster/kube-api.js'
import type {KubeConfigMap, KubeDaemonSet} from '../cluster/kube-types.js'
import {NetctlError} from '../errors.js'
import {pollUntil} from '../util/wait.js'
import type {Abort} from './apply.js'
import type {KubeChange, ObjectRef} from './kube-objects.js'

/**
 * The API half of a Kubernetes backend switch: write the objects the CNI
 * reads its backend from, and for flannel restart its DaemonSet and wait for
 * the rollout, as `kubectl rollout restart` and `kubectl rollout status` do.
 * `back` writes the objects as they were before, the same way.
 */

const enc = encodeURIComponent
const configMapPath = (r: ObjectRef): string => `/api/v1/namespaces/${enc(r.namespace)}/configmaps/${enc(r.name)}`
const daemonSetPath = (r: ObjectRef): string => `/apis/apps/v1/namespaces/${enc(r.namespace)}/daemonsets/${enc(r.name)}`
const ipPoolPath = (name: string): string => `/apis/crd.projectcalico.org/v1/ippools/${enc(name)}`

/** The annotation `kubectl rollout restart` sets on the pod template. */
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt'

export interface KubeSwitchOptions {
  /** how long the DaemonSet may take to roll out */
  rolloutTimeoutMs: number
  abort?: Abort
  say?: (line: string) => void
  /** between rollout polls; default 1 s */
  pollMs?: number
}

/** Whether a DaemonSet has rolled out its current template, as `kubectl rollout status` decides it; else what is missing. */
export function rolloutState(ds: KubeDaemonSet): {done: boolean; message: string} {
  const st = (ds.status ?? {}) as {observedGeneration?: number; desiredNumberScheduled?: number; updatedNumberScheduled?: number; numberAvailable?: number}
  const generation = Number(ds.metadata.generation ?? 0)
  const desired = st.desiredNumberScheduled ?? 0
  const updated = st.updatedNumberScheduled ?? 0
  const available = st.numberAvailable ?? 0
  if ((st.observedGeneration ?? 0) < generation) return {done: false, message: 'waiting for the controller to see the new template'}
  if (updated < desired) return {done: false, message: `${updated} of ${desired} updated pods scheduled`}
  if (available < desired) return {done: false, message: `${available} of ${desired} updated pods available`}
  return {done: true, message: `${desired} of ${desired} updated pods available`}
}

async function waitRollout(api: KubeApi, r: ObjectRef, opts: KubeSwitchOptions): Promise<void> {
  let last = ''
  await pollUntil(
    async () => {
      const state = rolloutState(await api.get<KubeDaemonSet>(daemonSetPath(r)))
      if (state.done) return true
      if (state.message !== last) opts.say?.(`  daemonset ${r.namespace}/${r.name}: ${state.message}`)
      last = state.message
      if (opts.abort?.aborted) throw new NetctlError(`stopped waiting for daemonset ${r.namespace}/${r.name}: ${opts.abort.reason ?? 'interrupted'}`)
      return undefined
    },
    {
      timeoutMs: opts.rolloutTimeoutMs,
      intervalMs: opts.pollMs ?? 1000,
      reason: () => `daemonset ${r.namespace}/${r.name} did not roll out within ${Math.round(opts.rolloutTimeoutMs / 1000)}s (${last}; kubectl -n ${r.namespace} rollout status ds/${r.name})`,
    },
  )
}

/** The net-conf.json of a ConfigMap named `namespace/name`, as the API holds it now. */
export async function readNetConf(api: KubeApi, nsName: string): Promise<string | undefined> {
  const [namespace, name] = nsName.split('/') as [string, string]
  return (await api.get<KubeConfigMap>(configMapPath({namespace, name}))).data?.['net-conf.json']
}

async function writeNetConf(api: KubeApi, r: ObjectRef, expect: string, text: string): Promise<void> {
  const cm = await api.get<KubeConfigMap>(configMapPath(r))
  const now = cm.data?.['net-conf.json']
  if (now !== expect && now !== text) throw new NetctlError(`configmap ${r.namespace}/${r.name} changed since netctl read it: plan again`)
  // resourceVersion in the patch: the server refuses it (409) if someone wrote in between
  await api.patch(configMapPath(r), {metadata: {resourceVersion: cm.metadata.resourceVersion}, data: {'net-conf.json': text}}, 'merge')
}

/**
 * Apply a change (`forward`) or put its objects back as they were (`back`).
 * Each object written is pushed to `done` as it is, so a failure half-way
 * still says what changed.
 */
export async function applyKubeChange(api: KubeApi, change: KubeChange, direction: 'forward' | 'back', opts: KubeSwitchOptions, done: string[] = []): Promise<string[]> {
  if (change.family === 'flannel') {
    const [from, to] = direction === 'forward' ? [change.before, change.after] : [change.after, change.before]
    const cm = `configmap ${change.configMap.namespace}/${change.configMap.name}`
    opts.say?.(`${direction === 'forward' ? 'patching' : 'restoring'} ${cm} net-conf.json`)
    await writeNetConf(api, change.configMap, from, to)
    done.push(cm)
    const ds = `daemonset ${change.daemonSet.namespace}/${change.daemonSet.name}`
    opts.say?.(`restarting ${ds} (flanneld reads its backend at start) and waiting for the rollout`)
    await api.patch(daemonSetPath(change.daemonSet), {spec: {template: {metadata: {annotations: {[RESTARTED_AT]: new Date().toISOString()}}}}}, 'strategic')
    done.push(ds)
    await waitRollout(api, change.daemonSet, opts)
    return done
  }
  for (const p of change.pools) {
    const modes = direction === 'forward' ? p.after : p.before
    opts.say?.(`${direction === 'forward' ? 'patching' : 'restoring'} ippool ${p.name}: ipipMode ${modes.ipipMode}, vxlanMode ${modes.vxlanMode}`)
    // IPPools are custom resources: merge patch (strategic merge is refused for CRDs)
    await api.patch(ipPoolPath(p.name), {spec: modes}, 'merge')
    done.push(`ippool ${p.name}`)
  }
  return done
}
