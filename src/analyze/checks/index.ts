/**
 * The checks: findings about node state beyond a single packet's path
 * (run.ts holds the registry), and the cluster sweep built on them.
 */
export {type BackendMode, type BackendProfile, detectBackend} from './backend.js'
export {CheckContext, NodeValues} from './context.js'
export {type FlowEnd, type FlowPolicy, hopsToPolicyDrop, policyOnFlow} from './policy.js'
export type {Check, Raised} from './raise.js'
export {
  type CheckEntry,
  type CheckOptions,
  CHECKS,
  ChecksByNode,
  FACTS_VERSION,
  factsFor,
  factsMakerFor,
  type NodeLineEntry,
  type NodeStateSource,
  runChecks,
  runChecksByNode,
  runChecksOnePass,
  runChecksRaised,
  runChecksStreamed,
  runChecksWithFacts,
  type StreamedChecks,
  type VisitedChecks,
} from './run.js'
export {countFindings, type Sweep, sweep, type SweepCounts} from './sweep.js'
