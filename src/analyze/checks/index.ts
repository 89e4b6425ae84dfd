/**
 * The checks: findings about node state beyond a single packet's path
 * (run.ts holds the registry), and the cluster sweep built on them.
 */
export {detectBackend, type BackendMode, type BackendProfile} from './backend.js'
export {CheckContext} from './context.js'
export {type FlowEnd, type FlowPolicy, hopsToPolicyDrop, policyOnFlow} from './policy.js'
export type {Check, Raised} from './raise.js'
export {CHECKS, type CheckOptions, runChecks, runChecksRaised} from './run.js'
export {countFindings, sweep, type Sweep, type SweepCounts} from './sweep.js'
