/**
 * A stand-in for a node's `crictl`, for the API-server emulator's lab nodes.
 *
 * On a real node the pods' network namespaces are known to the container
 * runtime only; netctl's probe asks it with `crictl pods --namespace NS --name
 * NAME --state ready -q` and `crictl inspectp ID`. A lab node has no runtime,
 * so the emulator puts this small POSIX sh script first on PATH for commands
 * exec'd on a lab node. It knows that node's pods (their lab namespaces are
 * the sandboxes' network namespaces) and answers with crictl's output shapes:
 * IDs one per line for `pods -q` (filters are regular expressions, as crictl's
 * are), and for `inspectp` the JSON crictl >= 1.26 prints for a containerd
 * sandbox (keys sorted at every level, two-space indent), whose
 * info.runtimeSpec.linux.namespaces holds {"path": "/var/run/netns/...", "type": "network"}.
 * Anything else it does not emulate is an error, as a runtime would refuse it.
 */
import {createHash} from 'node:crypto'
import {chmodSync, mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'

export interface Sandbox {
  namespace: string
  name: string
  uid: string
  node: string
  ip: string
  /** the lab network namespace (a name under /run/netns) */
  netns: string
  createdAt: string
}

/** A sandbox ID as containerd makes them: 64 hex digits (here stable per pod). */
export function sandboxId(namespace: string, name: string): string {
  return createHash('sha256').update(`sandbox/${namespace}/${name}`).digest('hex')
}

/** Stringify with every object's keys sorted, as Go's encoding/json prints a map. */
function sortedJson(value: unknown): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
          )
        : v
  return JSON.stringify(sort(value), null, 2)
}

/** `crictl inspectp ID` of a ready containerd sandbox; "pid": 0 is replaced by a process of the namespace when it has one. */
export function inspectpJson(s: Sandbox): string {
  const id = sandboxId(s.namespace, s.name)
  const labels = {
    'io.kubernetes.pod.name': s.name,
    'io.kubernetes.pod.namespace': s.namespace,
    'io.kubernetes.pod.uid': s.uid,
  }
  const netnsPath = `/var/run/netns/${s.netns}`
  return sortedJson({
    status: {
      id,
      metadata: {attempt: 0, name: s.name, namespace: s.namespace, uid: s.uid},
      state: 'SANDBOX_READY',
      createdAt: s.createdAt,
      network: {additionalIps: [], ip: s.ip},
      linux: {namespaces: {options: {ipc: 'POD', network: 'POD', pid: 'CONTAINER', targetId: '', usernsOptions: null}}},
      labels,
      annotations: {'kubernetes.io/config.seen': s.createdAt, 'kubernetes.io/config.source': 'api'},
      runtimeHandler: '',
    },
    info: {
      pid: 0,
      processStatus: 'running',
      netNamespaceClosed: false,
      image: 'registry.k8s.io/pause:3.9',
      snapshotKey: id,
      snapshotter: 'overlayfs',
      runtimeHandler: '',
      runtimeType: 'io.containerd.runc.v2',
      runtimeOptions: {systemd_cgroup: true},
      config: {
        metadata: {name: s.name, uid: s.uid, namespace: s.namespace},
        hostname: s.name,
        labels,
        linux: {cgroup_parent: '/kubepods.slice/kubepods-besteffort.slice'},
      },
      runtimeSpec: {
        ociVersion: '1.1.0',
        process: {
          user: {uid: 65535, gid: 65535},
          args: ['/pause'],
          env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
          cwd: '/',
        },
        root: {path: 'rootfs', readonly: true},
        hostname: s.name,
        annotations: {
          'io.kubernetes.cri.container-type': 'sandbox',
          'io.kubernetes.cri.sandbox-id': id,
          'io.kubernetes.cri.sandbox-name': s.name,
          'io.kubernetes.cri.sandbox-namespace': s.namespace,
        },
        linux: {
          cgroupsPath: `kubepods-besteffort-pod${s.uid.replace(/-/g, '_')}.slice:cri-containerd:${id}`,
          namespaces: [
            {type: 'pid'},
            {type: 'ipc'},
            {type: 'uts'},
            {type: 'mount'},
            {type: 'network', path: netnsPath},
          ],
        },
      },
    },
  })
}

/** The script; DIR holds pods.tsv (ID, namespace, name, node, netns) and ID.json per sandbox. */
function script(dir: string, node: string): string {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`
  return `#!/bin/sh
# crictl stand-in of netctl's kube-apiserver emulator, for lab node ${node.replace(/[^\w.-]/g, '_')}
DIR=${q(dir)}; NODE=${q(node)}
cmd=; ns=; name=; state=; quiet=; id=
while [ $# -gt 0 ]; do
  case $1 in
    pods|inspectp) cmd=$1 ;;
    --namespace) ns=$2; shift ;;
    --name) name=$2; shift ;;
    -s|--state) state=$2; shift ;;
    -q|--quiet) quiet=1 ;;
    -*) echo "crictl (emulated): flag $1 is not emulated" >&2; exit 1 ;;
    *) id=$1 ;;
  esac
  shift
done
case $cmd in
  pods)
    [ -n "$quiet" ] || { echo 'crictl (emulated): only pods -q is emulated' >&2; exit 1; }
    # every emulated sandbox is ready
    case $state in ''|ready|SANDBOX_READY) ;; *) exit 0 ;; esac
    while IFS='	' read -r sid sns sname snode snetns; do
      [ "$snode" = "$NODE" ] || continue
      if [ -n "$ns" ] && ! printf '%s\\n' "$sns" | grep -Eq -- "$ns"; then continue; fi
      if [ -n "$name" ] && ! printf '%s\\n' "$sname" | grep -Eq -- "$name"; then continue; fi
      printf '%s\\n' "$sid"
    done < "$DIR/pods.tsv" ;;
  inspectp)
    while IFS='	' read -r sid sns sname snode snetns; do
      [ "$snode" = "$NODE" ] || continue
      case $sid in "$id"*) ;; *) continue ;; esac
      pid=$(ip netns pids "$snetns" 2>/dev/null | head -n 1)
      sed "s/\\"pid\\": 0,/\\"pid\\": \${pid:-0},/" "$DIR/$sid.json"
      exit 0
    done < "$DIR/pods.tsv"
    echo "FATA[0000] getting the pod sandbox status for \\"$id\\": rpc error: code = NotFound desc = an error occurred when try to find sandbox: not found" >&2
    exit 1 ;;
  *) echo "crictl (emulated): command '$cmd' is not emulated" >&2; exit 1 ;;
esac
`
}

/** The sandboxes of a lab and, per node, a directory to put first on PATH. */
export class CrictlStandin {
  private readonly rows: string[] = []

  constructor(readonly dir: string) {
    mkdirSync(dir, {recursive: true})
    writeFileSync(path.join(dir, 'pods.tsv'), '')
  }

  add(s: Sandbox): string {
    const id = sandboxId(s.namespace, s.name)
    writeFileSync(path.join(this.dir, `${id}.json`), `${inspectpJson(s)}\n`)
    this.rows.push([id, s.namespace, s.name, s.node, s.netns].join('\t'))
    writeFileSync(path.join(this.dir, 'pods.tsv'), `${this.rows.join('\n')}\n`)
    return id
  }

  private readonly bins = new Map<string, string>()

  /** The directory holding `crictl` for this node (written once, on first use: never while an exec runs it). */
  binDir(node: string): string {
    let bin = this.bins.get(node)
    if (!bin) {
      bin = path.join(this.dir, 'bin', createHash('sha256').update(node).digest('hex').slice(0, 16))
      mkdirSync(bin, {recursive: true})
      writeFileSync(path.join(bin, 'crictl'), script(this.dir, node))
      chmodSync(path.join(bin, 'crictl'), 0o755)
      this.bins.set(node, bin)
    }
    return bin
  }
}
