import {BaseCommand} from '../src/base-command.js'
import {Ending} from '../src/errors.js'
import {versionText} from '../src/render/version.js'
import {versionInfo} from '../src/services/version.js'

export default class Version extends BaseCommand {
  static override summary =
    'Print the netctl version, the snapshot schema version it reads and writes, and the Node runtime.'
  static override description = `netctl --version prints the same. A snapshot (netctl collect) records its schemaVersion; this netctl reads snapshots up to the schema version it prints and refuses newer ones.`
  static override examples = [
    {description: 'The version and the snapshot schema', command: '<%= config.bin %> version'},
    {description: 'As JSON', command: '<%= config.bin %> version --json'},
  ]
  static override enableJsonFlag = true

  async run(): Promise<Ending> {
    await this.parse(Version)
    const info = versionInfo(this.config.version)
    if (!this.jsonEnabled()) this.log(versionText(info))
    return new Ending(info)
  }
}
