import {shjoin} from '../util/shell.js'

/** Tokens that go into `ip -batch` / `bridge -batch` lines unquoted must be plain. */
const BATCH_TOKEN = /^[A-Za-z0-9_.:/@+-]+$/

function batchLine(argv: ReadonlyArray<string | number>): string {
  for (const a of argv) {
    if (!BATCH_TOKEN.test(String(a))) throw new Error(`unsafe token in batch line: ${JSON.stringify(a)}`)
  }
  return argv.join(' ')
}

/**
 * A POSIX sh script that a lab namespace runs once (`ip netns exec NS sh -e FILE`).
 * iproute2 work goes through `ip -batch` so that one process does many changes;
 * everything else is a quoted command line. Lines starting `netctl-warning:` on
 * stdout are warnings the lab passes on to the user.
 */
export class NsScript {
  private readonly parts: string[] = ['set -e']
  private ipBatch: string[] = []
  private bridgeBatch: string[] = []

  /** `ip -batch` lines, e.g. ['link', 'set', 'lo', 'up'] */
  ip(...argv: Array<string | number>): this {
    this.flushBridge()
    this.ipBatch.push(batchLine(argv))
    return this
  }

  /** `bridge -batch` lines, e.g. ['fdb', 'add', mac, 'dev', 'flannel.1', ...] */
  bridge(...argv: Array<string | number>): this {
    this.flushIp()
    this.bridgeBatch.push(batchLine(argv))
    return this
  }

  /** One command, each word quoted. */
  cmd(...argv: Array<string | number>): this {
    this.flush()
    this.parts.push(shjoin(argv))
    return this
  }

  /** Write a value to a /proc/sys file (no process needed). */
  sysctl(key: string, value: string | number): this {
    this.flush()
    this.parts.push(`echo ${shjoin([value])} > ${shjoin([`/proc/sys/${key.replace(/\./g, '/')}`])}`)
    return this
  }

  /**
   * A command that may be refused by the kernel: its failure becomes a warning
   * (with the kernel's own words) instead of stopping the script.
   */
  tryCmd(warning: string, ...argv: Array<string | number>): this {
    this.flush()
    this.parts.push(
      `if ! netctl_out=$(${shjoin(argv)} 2>&1); then printf 'netctl-warning: %s: %s\\n' ${shjoin([warning])} "$netctl_out"; fi`,
    )
    return this
  }

  raw(line: string): this {
    this.flush()
    this.parts.push(line)
    return this
  }

  private flushIp(): void {
    if (this.ipBatch.length === 0) return
    this.parts.push(`ip -batch - <<'NETCTL_EOF'\n${this.ipBatch.join('\n')}\nNETCTL_EOF`)
    this.ipBatch = []
  }

  private flushBridge(): void {
    if (this.bridgeBatch.length === 0) return
    this.parts.push(`bridge -batch - <<'NETCTL_EOF'\n${this.bridgeBatch.join('\n')}\nNETCTL_EOF`)
    this.bridgeBatch = []
  }

  private flush(): void {
    this.flushIp()
    this.flushBridge()
  }

  toString(): string {
    this.flush()
    return `${this.parts.join('\n')}\n`
  }
}
