import {Flags} from '@oclif/core'

/** --name for lab commands: one lab per name; every namespace of it is called NAME.* */
export const labNameFlag = Flags.string({
  description: 'Name of the lab; every namespace it makes is called NAME.<something>.',
  default: 'netctl',
  char: 'n',
})
