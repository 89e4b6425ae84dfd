import type {Ipset} from '../../model/netfilter.js'
import {ParseError} from './errors.js'
import {tokenize} from './iptables.js'

/**
 * `ipset save` → sets with their type, family, create options and members.
 * A member keeps its value as ipset writes it (`10.0.0.0/24`,
 * `10.96.0.10,udp:53`, a set's name in a list:set) and any per-member options
 * (timeout, comment, nomatch, ...). An `add` for a set never created, or a
 * line that is neither, is an error: the output was cut or is not ipset's.
 */
export function parseIpsetSave(text: string, section = 'ipset'): Ipset[] {
  const sets = new Map<string, Ipset>()
  text.split('\n').forEach((raw, idx) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    let words: string[]
    try {
      words = tokenize(line)
    } catch (error) {
      throw new ParseError(section, (error as Error).message, idx + 1)
    }
    const [verb, name, third, ...rest] = words
    if (verb === 'create' || verb === '-N') {
      if (!name || !third)
        throw new ParseError(section, `create without a name and type: '${line.slice(0, 60)}'`, idx + 1)
      const set: Ipset = {name, type: third, options: [], members: []}
      for (let i = 0; i < rest.length; i++) {
        if (rest[i] === 'family' && rest[i + 1]) {
          const f = rest[++i]
          if (f === 'inet' || f === 'inet6') set.family = f
          else set.options.push('family', f!)
        } else set.options.push(rest[i]!)
      }
      sets.set(name, set)
      return
    }
    if (verb === 'add' || verb === '-A') {
      const set = name ? sets.get(name) : undefined
      if (!set) throw new ParseError(section, `add to set ${name ?? '?'} before it was created`, idx + 1)
      if (third === undefined) throw new ParseError(section, `add to ${name} without a member`, idx + 1)
      set.members.push(rest.length > 0 ? {value: third, options: rest} : {value: third})
      return
    }
    throw new ParseError(section, `expected create or add, got '${line.slice(0, 60)}'`, idx + 1)
  })
  return [...sets.values()]
}
