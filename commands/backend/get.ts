import {BaseCommand} from '../../src/base-command.js'
import {Ending} from '../../src/errors.js'
import {clusterFlags} from '../../src/flags.js'
import {backendGetJson, backendGetText} from '../../src/render/backend.js'
import {runBackendGet} from '../../src/services/backend.js'

export default class BackendGet extends BaseCommand {
  static override summary = 'Show the configured overlay backend and what every node actually has programmed.'
  static override description = `Collects every node (read-only) and lists, per node, the backend's devices, addresses, routes, neighbours and FDB entries as iproute2 prints them, how it routes to each peer's pod block, and its backend daemons. Whatever differs from the configured backend is drift, named per node: "configured flannel-host-gw but node3 still routes via flannel.1 (flannel-vxlan) to node1, node2".

The cluster is a lab (--lab), an inventory file (--inventory), or else the Kubernetes cluster of the kubeconfig, whose configured backend is detected from the CNI's objects (flannel's net-conf.json, Calico's IPPools) and whose nodes are read through debug pods (--via debug-pod) or SSH (--via ssh), as netctl collect reads them.

Exit codes: 0 no drift; 1 drift found; 3 a node could not be collected (one line on stderr names it and why, e.g. a changed host key; the drift of the others is still shown); 2 usage errors.`
  static override examples = [
    {description: 'The backend of a lab', command: '<%= config.bin %> backend get --lab demo'},
    {description: 'Of real nodes, as JSON', command: '<%= config.bin %> backend get --inventory cluster.yaml --json'},
    {
      description: 'Of the Kubernetes cluster of the current context (nodes read through debug pods)',
      command: '<%= config.bin %> backend get',
    },
  ]
  static override enableJsonFlag = true
  static override flags = {...clusterFlags}

  async run(): Promise<Ending> {
    const {flags} = await this.parse(BackendGet)
    const {view, verdict} = await runBackendGet({
      source: flags,
      timeoutMs: flags.timeout * 1000,
      version: this.config.version,
    })
    if (!this.jsonEnabled()) this.log(backendGetText(view))
    return new Ending(backendGetJson(view), verdict)
  }
}
