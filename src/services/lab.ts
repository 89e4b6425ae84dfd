/**
 * The lab commands behind their commands (`lab up`, `lab down`, `lab list`,
 * `lab status`, `lab bench`): one call each, over the lab modules. Prints
 * nothing: progress and a removed lab are handed to the caller as they come,
 * so that a long run says what it has done so far.
 */
import {ExitCode, NetctlError, type Verdict} from '../errors.js'
import {type BenchHooks, type BenchOptions, type BenchReport, runBench} from '../lab/bench.js'
import {labUp, type LabUpProgress} from '../lab/build.js'
import {type LabListEntry, listLabs} from '../lab/list.js'
import {labPreflight} from '../lab/preflight.js'
import {loadRecord} from '../lab/state.js'
import {type LabStatus, labStatus} from '../lab/status.js'
import {teardownLab, type TeardownResult} from '../lab/teardown.js'
import type {LabOptions} from '../lab/types.js'
import {type LabUpResult, labUpResult} from '../lab/up-result.js'
import {benchVerdict, labStatusVerdict} from './outcome.js'

/**
 * `lab up`: build the lab (a failure removes what was made) and say what it
 * made, as `lab up --json` gives it; each step is handed to `progress` as it starts.
 */
export async function runLabUp(req: LabOptions & {progress?: LabUpProgress | undefined}): Promise<LabUpResult> {
  const {progress, ...options} = req
  return labUpResult(await labUp(options, progress))
}

/** `lab list`: every lab on this machine (with the orphans a crash left), or only the one named. */
export async function runLabList(req: {lab?: string | undefined}): Promise<{labs: LabListEntry[]}> {
  const labs = (await listLabs()).filter((l) => req.lab === undefined || l.name === req.lab)
  return {labs}
}

/** `lab bench`: one small lab per backend, measured and torn down; a backend that could not be built is a fault. */
export async function runLabBench(req: BenchOptions & BenchHooks): Promise<{report: BenchReport; verdict: Verdict}> {
  const {progress, interrupted, ...options} = req
  const report = await runBench(options, {
    ...(progress ? {progress} : {}),
    ...(interrupted ? {interrupted} : {}),
  })
  return {report, verdict: benchVerdict(report)}
}

export interface LabDownRun {
  /** one lab: what was removed; --all: every lab removed */
  result: TeardownResult | {removed: TeardownResult[]}
  /** --all found no lab at all */
  none: boolean
}

/**
 * `lab down`: the lab named, or with `all` every lab on the machine. One lab
 * that refuses (a name pointing at a namespace it did not make) refuses at
 * once; --all goes on with the others and refuses at the end, naming them.
 */
export async function labDown(req: {
  lab: string
  all: boolean
  removed?: ((r: TeardownResult) => void) | undefined
}): Promise<LabDownRun> {
  await labPreflight({backend: 'flannel-vxlan', ssh: false})
  const names = req.all ? (await listLabs()).map((l) => l.name) : [req.lab]
  const results: TeardownResult[] = []
  const refused: string[] = []
  for (const name of names) {
    try {
      const r = await teardownLab(name)
      req.removed?.(r)
      results.push(r)
    } catch (error) {
      if (!req.all || !(error instanceof NetctlError) || error.exitCode !== ExitCode.REFUSED) throw error
      refused.push(error.message)
    }
  }
  if (refused.length > 0)
    throw new NetctlError(
      `${refused[0]}${refused.length > 1 ? ` (and ${refused.length - 1} more labs refused)` : ''}`,
      'refused',
      'REFUSED',
    )
  return {result: req.all ? {removed: results} : results[0]!, none: req.all && names.length === 0}
}

/** `lab status`: the lab's recorded state checked against the machine, its BGP sessions and (with ping) its pods' reachability. */
export async function runLabStatus(req: {
  lab: string
  ping: boolean
  allPairs: boolean
}): Promise<{status: LabStatus; verdict: Verdict}> {
  const status = await labStatus(await loadRecord(req.lab), {ping: req.ping, allPairs: req.allPairs})
  return {status, verdict: labStatusVerdict(status)}
}
