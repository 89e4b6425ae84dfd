/**
 * How netctl reaches a node: a lab namespace, SSH, or a privileged debug pod
 * (Kubernetes). Collectors depend on this interface only, so tests swap in fakes.
 */
export interface ExecOptions {
  /** give up after this many milliseconds; the result then has timedOut */
  timeoutMs?: number
  /** bytes to feed the remote command's stdin */
  stdin?: string
}

export interface TransportResult {
  stdout: string
  stderr: string
  code: number
  timedOut?: boolean
}

export interface Transport {
  /** what the transport reaches, for messages ("netns lab.node1", "ssh root@node1") */
  readonly target: string
  /** Run a POSIX sh script on the node (the script is data: never interpolated into a command line). */
  exec(script: string, opts?: ExecOptions): Promise<TransportResult>
  close(): Promise<void>
}

/** Raised when a node cannot be reached at all (maps to NODE_UNREACHABLE and exit 3). */
export class TransportError extends Error {
  constructor(
    message: string,
    readonly reason:
      'unreachable' | 'auth' | 'hostkey-unknown' | 'hostkey-changed' | 'timeout' | 'refused' | 'config' = 'unreachable',
    /** the cluster node it concerns, when the transport knows it */
    readonly node?: string,
  ) {
    super(message)
    this.name = 'TransportError'
  }
}

/**
 * The cluster refuses what reaching any of its nodes needs (Pod Security
 * Admission refusing the privileged debug pod in its namespace): every other
 * node would be refused the same way, so the run stops at the first one, in
 * one line that says what to change, instead of reporting each node unreachable.
 */
export class ClusterRefusal extends TransportError {
  constructor(message: string) {
    super(message, 'refused')
    this.name = 'ClusterRefusal'
  }
}
