/**
 * `lab policy apply | delete` under the lab's change lock (backend/lock.ts,
 * as `backend set` takes it), the record read once the lock is held: two runs
 * never interleave their read-modify-write of the record, nor their
 * programming of the nodes.
 */
import path from 'node:path'

import {acquireLock, currentHolder, FileLock} from '../backend/act/lock.js'
import {applyTo, deleteFrom, type LabPolicyResult, parsePolicyDocuments} from '../lab/policy.js'
import {loadRecord} from '../lab/state.js'
import type {LabRecord} from '../lab/types.js'

export interface LabPolicyChangeOptions {
  /** how long to wait for another run holding the lab's change lock (default 0: refused at once) */
  lockTimeoutMs?: number
  say?: (line: string) => void
}

/** Run a change of the lab (its policies, its kube-proxy rules) under its change lock, on the record as it is once the lock is held. */
export async function underChangeLock<T>(
  lab: string,
  command: string,
  opts: LabPolicyChangeOptions,
  change: (record: LabRecord) => Promise<T>,
): Promise<T> {
  const {stateDir} = await loadRecord(lab)
  const lock = new FileLock(path.join(stateDir, 'change.lock'), `lab ${lab}`, currentHolder(command))
  await acquireLock(lock, {timeoutMs: opts.lockTimeoutMs ?? 0, ...(opts.say ? {say: opts.say} : {})})
  try {
    return await change(await loadRecord(lab))
  } finally {
    await lock.release()
  }
}

/** `lab policy apply -f FILE`: create or replace each policy by namespace/name. */
export async function applyLabPolicies(
  lab: string,
  text: string,
  file: string,
  opts: LabPolicyChangeOptions = {},
): Promise<LabPolicyResult> {
  const incoming = parsePolicyDocuments(text, file)
  return underChangeLock(lab, `lab policy apply -f ${file}`, opts, (record) => applyTo(record, incoming))
}

/** `lab policy delete NAME [-n NS]` */
export async function deleteLabPolicy(
  lab: string,
  name: string,
  namespace = 'default',
  opts: LabPolicyChangeOptions = {},
): Promise<LabPolicyResult> {
  return underChangeLock(lab, `lab policy delete ${name} -n ${namespace}`, opts, (record) =>
    deleteFrom(record, name, namespace),
  )
}
