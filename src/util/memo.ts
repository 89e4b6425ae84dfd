/**
 * MEMORY's value for KEY, made by MAKE the first time it is asked (undefined is remembered too).
 * MEMORY is emptied once it holds MAX keys, so that a long-lived process does not keep every text
 * it ever saw (Infinity: a memory that lives as long as its owner, never emptied).
 */
export function remembered<K, V>(memory: Map<K, V>, key: K, max: number, make: (key: K) => V): V {
  const known = memory.get(key)
  if (known !== undefined || memory.has(key)) return known as V
  if (memory.size >= max) memory.clear()
  const made = make(key)
  memory.set(key, made)
  return made
}
