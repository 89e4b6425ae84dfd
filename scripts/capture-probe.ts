/**
 * Capture the raw probe output of one lab node, for fixtures/probe/:
 *   node --import tsx scripts/capture-probe.ts LAB NODE > fixtures/probe/NAME.out
 * The marker nonce is fixed ("fixture") so that fixtures read easily.
 */
import {loadInventory} from '../src/cluster/inventory.js'
import {buildProbe} from '../src/collect/probe.js'
import {labInventoryFile} from '../src/lab/inventory.js'
import {NetnsTransport} from '../src/transport/netns.js'

const [lab, nodeName] = process.argv.slice(2)
if (!lab || !nodeName) {
  process.stderr.write('usage: capture-probe.ts LAB NODE\n')
  process.exit(2)
}
const inv = await loadInventory(await labInventoryFile(lab))
const node = inv.nodes.find((n) => n.name === nodeName)
if (!node?.access.netns) {
  process.stderr.write(`no lab node ${nodeName} in ${lab}\n`)
  process.exit(2)
}
const pods = inv.pods.filter((p) => p.node === node.name)
const probe = buildProbe({paths: node.paths, pods: pods.map((p) => ({netns: p.netns!})), nonce: 'fixture'})
const r = await new NetnsTransport(node.access.netns).exec(probe.script, {timeoutMs: 30_000})
process.stdout.write(r.stdout)
process.stderr.write(
  `# ${node.name}: exit ${r.code}, ${r.stdout.length} bytes; pods: ${pods.map((p) => `${p.namespace}/${p.name}`).join(' ')}\n`,
)
