import type {ConfiguredBackend, Daemon} from '../plan/types.js'

/**
 * How a cluster's backend daemons are started, stopped and reconfigured per
 * node, where netctl runs them: in its lab, with the lab's backend modules.
 * A Kubernetes cluster's daemons are its CNI's, driven through their objects
 * (kubernetes.ts); an inventory cluster has none netctl may touch.
 */
export interface DaemonControl {
  stop(node: string, daemon: Daemon): Promise<void>
  /** start `daemon` configured for backend `type` */
  start(node: string, daemon: Daemon, type: ConfiguredBackend): Promise<void>
  /** have a running daemon take the config of backend `type` without a restart (BIRD keeps its sessions) */
  reconfigure(node: string, daemon: Daemon, type: ConfiguredBackend): Promise<void>
}

/** Pod pairs to ping after a switch; a cluster without pod namespaces to enter has none. */
export interface ReachabilityCheck {
  /** one pod per node to one pod on every other node; each pair gets a few tries */
  check(): Promise<{pairs: number; ok: number; failed: Array<{from: string; to: string; toIP: string}>; note?: string}>
}
