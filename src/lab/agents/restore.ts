/**
 * An `iptables-restore --noflush` input, built table by table. Agents never
 * declare the built-in chains (that would reset the policy another agent set);
 * they declare their own chains and append (-A) or insert (-I) into the built-in ones.
 */
export class RestoreFile {
  private readonly tables = new Map<string, {chains: string[]; rules: string[]}>()

  private table(name: string): {chains: string[]; rules: string[]} {
    let t = this.tables.get(name)
    if (!t) {
      t = {chains: [], rules: []}
      this.tables.set(name, t)
    }
    return t
  }

  chain(table: string, name: string): this {
    const t = this.table(table)
    if (!t.chains.includes(name)) t.chains.push(name)
    return this
  }

  /** One rule line without the table, e.g. `-A KUBE-SERVICES -m comment ...`. */
  rule(table: string, line: string): this {
    this.table(table).rules.push(line)
    return this
  }

  /** Table by table, in the order written: the declared chains and the rule lines. */
  contents(): Array<{table: string; chains: readonly string[]; rules: readonly string[]}> {
    return [...this.tables].map(([table, t]) => ({table, chains: t.chains, rules: t.rules}))
  }

  get empty(): boolean {
    return this.tables.size === 0
  }

  toString(): string {
    const out: string[] = []
    for (const [name, t] of this.tables) {
      out.push(`*${name}`, ...t.chains.map((c) => `:${c} - [0:0]`), ...t.rules, 'COMMIT')
    }
    return `${out.join('\n')}\n`
  }
}

/** `-m comment --comment X` as the agents write it: quoted when it holds a space. */
export function comment(text: string): string {
  return `-m comment --comment ${/\s/.test(text) ? `"${text}"` : text}`
}
