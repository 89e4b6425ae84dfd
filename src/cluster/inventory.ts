import {UsageError} from '../errors.js'
import type {Inventory} from '../model/inventory.js'
import {readUserFile} from '../util/files.js'
import {firstSchemaError, validatorFor} from '../util/schema.js'
import {parseUserYaml} from '../util/yaml.js'

/**
 * Load and check an inventory file (YAML or JSON, the format of
 * src/model/inventory.ts). Every problem is one line naming the file and the field:
 * `inventory.yaml: nodes[1].podCIDR: must be a CIDR like 10.244.1.0/24`.
 */
export async function loadInventory(file: string): Promise<Inventory> {
  return parseInventory(await readUserFile(file), file)
}

export function parseInventory(text: string, file = 'inventory'): Inventory {
  const parsed = parseUserYaml(text)
  if ('problem' in parsed) {
    const {line, why} = parsed.problem
    throw new UsageError(`${file}: ${line ? `line ${line}: ` : ''}not valid YAML (${why})`)
  }
  const {data} = parsed
  if (data === null || typeof data !== 'object' || Array.isArray(data))
    throw new UsageError(`${file}: expected a mapping with apiVersion, kind, cluster, nodes`)
  const validate = validatorFor('inventory')
  if (!validate(data)) throw new UsageError(`${file}: ${firstSchemaError(validate.errors)}`)
  const inv = data as Inventory
  inv.pods ??= []
  checkInventory(inv, file)
  return inv
}

/** What a schema cannot say: unique names, one way in per node, pods on known nodes. */
function checkInventory(inv: Inventory, file: string): void {
  const seen = new Map<string, number>()
  inv.nodes.forEach((n, i) => {
    if (seen.has(n.name))
      throw new UsageError(`${file}: nodes[${i}].name: '${n.name}' is already nodes[${seen.get(n.name)}]`)
    seen.set(n.name, i)
    if (n.access.netns === undefined && n.access.ssh === undefined) {
      throw new UsageError(`${file}: nodes[${i}].access: needs netns (a lab node) or ssh (a real node)`)
    }
  })
  const pods = new Set<string>()
  inv.pods.forEach((p, i) => {
    if (!seen.has(p.node)) throw new UsageError(`${file}: pods[${i}].node: no node named '${p.node}' in nodes`)
    const key = `${p.namespace}/${p.name}`
    if (pods.has(key)) throw new UsageError(`${file}: pods[${i}]: pod ${key} is listed twice`)
    pods.add(key)
    if (p.netns !== undefined && p.pid !== undefined)
      throw new UsageError(`${file}: pods[${i}]: give netns or pid, not both`)
  })
}
