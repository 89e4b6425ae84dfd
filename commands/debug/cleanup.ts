import {Flags} from '@oclif/core'

import {BaseCommand} from '../../src/base-command.js'
import {Ending} from '../../src/errors.js'
import {kubeFlags} from '../../src/flags.js'
import {debugCleanupText} from '../../src/render/debug.js'
import {runDebugCleanup} from '../../src/services/debug.js'

export default class DebugCleanup extends BaseCommand {
  static override summary = 'Delete debug pods that earlier netctl runs left behind.'
  static override description = `netctl deletes its debug pods (--via debug-pod) when it finishes, also on Ctrl-C; a run killed outright leaves them until their activeDeadlineSeconds ends them. This deletes every pod labelled app.kubernetes.io/managed-by=netctl with a netctl.dev/run-id, in all namespaces or in the one given with --namespace.`
  static override examples = [
    {description: 'Delete leftover debug pods in every namespace', command: '<%= config.bin %> debug cleanup'},
    {
      description: 'Only in one namespace, with another kubeconfig',
      command: '<%= config.bin %> debug cleanup -n netctl --kubeconfig ~/.kube/prod.yaml',
    },
    {description: 'As JSON', command: '<%= config.bin %> debug cleanup --json'},
  ]
  static override enableJsonFlag = true
  static override flags = {
    ...kubeFlags,
    namespace: Flags.string({
      char: 'n',
      description: 'Only this namespace (default: all namespaces).',
      helpGroup: 'KUBERNETES',
    }),
  }

  async run(): Promise<Ending> {
    const {flags} = await this.parse(DebugCleanup)
    const {result, verdict} = await runDebugCleanup({
      kubeconfig: flags.kubeconfig,
      context: flags.context,
      namespace: flags.namespace,
    })
    if (!this.jsonEnabled()) this.log(debugCleanupText(result))
    return new Ending(result, verdict)
  }
}
