import {Flags} from '@oclif/core'

/** --name for lab commands: one lab per name; every namespace of it is called NAME.* */
export const labNameFlag = Flags.string({
  description: 'Name of the lab; every namespace it makes is called NAME.<something>.',
  default: 'netctl',
  char: 'n',
})

/** Which cluster a command works on: a lab by name, or an inventory file. */
export const clusterFlags = {
  lab: Flags.string({description: 'Work on the lab of this name.', exclusive: ['inventory'], helpValue: 'NAME'}),
  inventory: Flags.string({char: 'i', description: 'Work on the nodes of this inventory file (see docs/inventory.md).', exclusive: ['lab'], helpValue: 'FILE'}),
  timeout: Flags.integer({description: 'Seconds each node may take to answer.', default: 30, min: 1, max: 3600}),
}
