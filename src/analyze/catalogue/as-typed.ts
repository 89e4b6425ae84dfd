/**
 * A finding's fix as it must be typed on this machine. The catalogue's fix is
 * what to run on the node itself; a lab node is a network namespace of this
 * machine, so its commands run through `ip netns exec NS` (typed bare, they
 * would change the machine's own namespace), and where there is no Kubernetes
 * (a lab or an inventory) there is no kubectl to run; where the fix restarts
 * an agent netctl stands in for in a lab (kube-proxy), the lab's own command
 * (the entry's labFix). Pure: everything comes from the snapshot (the node's
 * netns, the cluster's source and name).
 */
import type {Finding} from '../../model/finding.js'
import type {Snapshot} from '../../model/snapshot.js'
import {shq} from '../../util/shell.js'
import {CATALOGUE} from './index.js'

export interface FixPlace {
  /** the named network namespace the node is (a lab node); absent for a real node */
  netns?: string
  /** false: a lab or an inventory, where kubectl has no cluster to talk to */
  kubernetes: boolean
}

/** What the shell itself does before `ip netns exec` would see it: pipes, lists, redirections, expansions. */
const SHELL_SYNTAX = /[|&;<>()$`\\*?[\]{}~]|^\s*(for|while|if|case)\b/

/** A lab node boots with nothing: a line that makes state survive a reboot writes the machine's own /etc instead. */
const PERSISTS = />\s*\/etc\//

/**
 * The fix, line by line: commands for the node's namespace (a line with shell
 * syntax as `sh -c`, so that its redirections and pipes run there too), kubectl
 * lines only in Kubernetes; a comment goes with the commands after it, and is
 * left out with them when they all are. Where kubectl is all the fix has, its
 * lines stay as comments under KUBECTL_ELSEWHERE rather than nothing at all.
 */
export function fixAsTyped(fix: string, place: FixPlace): string {
  const groups: Array<{comments: string[]; commands: string[]}> = []
  for (const line of fix.split('\n')) {
    const comment = isComment(line)
    let group = groups.at(-1)
    // a comment after commands starts the next group
    if (!group || (comment && group.commands.length > 0)) groups.push((group = {comments: [], commands: []}))
    if (comment) group.comments.push(line)
    else group.commands.push(line.trim())
  }
  const typed = groups.flatMap(({comments, commands}) => {
    const lines = commands.map((c) => asTyped(c, place)).filter((c): c is string => c !== undefined)
    return commands.length > 0 && lines.length === 0 ? [] : [...comments, ...lines]
  })
  // A fix that is kubectl's alone would be printed empty (or as a stray "then …" comment): nothing is
  // lost, the kubectl lines stay, commented out, for whoever has a cluster's API at hand.
  const kubectlOnly =
    !place.kubernetes &&
    !typed.some((l) => !isComment(l)) &&
    groups.some(({commands}) => commands.some((c) => KUBECTL.test(c)))
  if (!kubectlOnly) return typed.join('\n')
  return [
    KUBECTL_ELSEWHERE,
    ...groups.flatMap(({comments, commands}) => [
      ...comments,
      ...commands.flatMap((c) => (KUBECTL.test(c) ? [`# ${c}`] : (asTyped(c, place) ?? []))),
    ]),
  ].join('\n')
}

const KUBECTL = /^kubectl\b/

/** What leads a fix that only kubectl can carry out where netctl read no Kubernetes API (a lab, an inventory). */
export const KUBECTL_ELSEWHERE = '# no Kubernetes API was read here: with kubectl against the cluster, the fix is'

const isComment = (line: string): boolean => line.trim() === '' || line.trim().startsWith('#')

function asTyped(command: string, place: FixPlace): string | undefined {
  if (!place.kubernetes && KUBECTL.test(command)) return undefined
  if (place.netns === undefined) return command
  if (PERSISTS.test(command)) return undefined
  const ns = `ip netns exec ${shq(place.netns)}`
  return SHELL_SYNTAX.test(command) ? `${ns} sh -c ${shq(command)}` : `${ns} ${command}`
}

/** Every finding's fix as typed here: in its node's namespace when the node is a lab's, without kubectl outside Kubernetes. */
export function findingsAsTyped(
  findings: readonly Finding[],
  snapshot: Pick<Snapshot, 'cluster' | 'nodes'>,
): Finding[] {
  const kubernetes = snapshot.cluster.source === 'kubernetes'
  const netnsOf = new Map(snapshot.nodes.map((n) => [n.name, n.netns]))
  return findings.map((f) => {
    const labFix = snapshot.cluster.source === 'lab' && f.node !== undefined ? CATALOGUE[f.code]?.labFix : undefined
    const netns = f.node === undefined ? undefined : netnsOf.get(f.node)
    if (labFix !== undefined)
      return {
        ...f,
        fix: labFix
          .replace(/<lab>/g, shq(snapshot.cluster.name))
          .replace(/<node>/g, shq(f.node!))
          .replace(/<netns>/g, shq(netns ?? f.node!)),
      }
    const fix = fixAsTyped(f.fix, {kubernetes, ...(netns === undefined ? {} : {netns})})
    return fix === f.fix ? f : {...f, fix}
  })
}
