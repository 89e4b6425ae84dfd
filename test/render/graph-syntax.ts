/**
 * Structural checks for the Mermaid and DOT netctl writes (neither mermaid-cli
 * nor graphviz is installed here): every line is one statement of the small
 * grammar subset the renderers use, groups are balanced, quoted strings end,
 * and edges only join nodes that were declared. Each returns the problems found.
 */

const MERMAID_LINE = [
  /^flowchart LR$/,
  /^ {2}subgraph [A-Za-z][\w]*\["[^"]*"\]$/,
  /^ {4}direction LR$/,
  /^ {4}(?<node>[A-Za-z][\w]*)\["[^"]*"\]$/,
  /^ {4}(?<from>[A-Za-z][\w]*) -->(?:\|"[^"|]*"\|)? (?<to>[A-Za-z][\w]*)$/,
  /^ {2}end$/,
  /^ {2}classDef [A-Za-z]\w* [\w:#,.-]+$/,
  /^ {2}class (?<ids>[A-Za-z]\w*(?:,[A-Za-z]\w*)*) [A-Za-z]\w*$/,
]

export function mermaidProblems(text: string): string[] {
  const problems: string[] = []
  const declared = new Set<string>()
  const used: string[] = []
  let depth = 0
  const lines = text.split('\n')
  if (lines[0] !== 'flowchart LR') problems.push('does not start with flowchart LR')
  for (const line of lines) {
    const m = MERMAID_LINE.map((re) => re.exec(line)).find(Boolean)
    if (!m) {
      problems.push(`not a statement: ${line}`)
      continue
    }
    if (/^ {2}subgraph /.test(line)) depth += 1
    if (line === '  end') depth -= 1
    if (depth < 0) problems.push('end without subgraph')
    if (m.groups?.node) {
      if (declared.has(m.groups.node)) problems.push(`node ${m.groups.node} declared twice`)
      declared.add(m.groups.node)
    }
    if (m.groups?.from) used.push(m.groups.from, m.groups.to!)
    if (m.groups?.ids) used.push(...m.groups.ids.split(','))
    // inside a label only entity codes may use '#'
    for (const label of line.match(/"[^"]*"/g) ?? [])
      if (/#(?!\d+;|quot;|lt;|gt;)/.test(label)) problems.push(`raw # in ${label}`)
  }
  if (depth !== 0) problems.push(`${depth} subgraph(s) not closed`)
  for (const id of used) if (!declared.has(id)) problems.push(`${id} used but not declared`)
  return problems
}

/** DOT tokens: identifiers, numbers, quoted strings, punctuation; throws on an unterminated string. */
function dotTokens(text: string): string[] {
  const tokens: string[] = []
  let i = 0
  while (i < text.length) {
    const ch = text[i]!
    if (/\s/.test(ch)) i += 1
    else if (ch === '"') {
      let j = i + 1
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      if (j >= text.length) throw new Error(`unterminated string at ${i}`)
      const inner = text.slice(i + 1, j)
      if (/\n/.test(inner)) throw new Error(`raw newline in string at ${i}`)
      tokens.push(text.slice(i, j + 1))
      i = j + 1
    } else if (text.startsWith('->', i)) {
      tokens.push('->')
      i += 2
    } else if ('{}[];=,'.includes(ch)) {
      tokens.push(ch)
      i += 1
    } else {
      const m = /^[A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*|^-?\d+(?:\.\d+)?/.exec(text.slice(i))
      if (!m) throw new Error(`unexpected ${JSON.stringify(ch)} at ${i}`)
      tokens.push(m[0])
      i += m[0].length
    }
  }
  return tokens
}

export function dotProblems(text: string): string[] {
  let tokens: string[]
  try {
    tokens = dotTokens(text)
  } catch (error) {
    return [(error as Error).message]
  }
  const problems: string[] = []
  if (tokens[0] !== 'digraph' || tokens[2] !== '{') problems.push('not "digraph ID {"')
  const stack: string[] = []
  const declared = new Set<string>()
  const edges: string[] = []
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!
    if (t === '{' || t === '[') stack.push(t)
    else if (t === '}' || t === ']') {
      const open = stack.pop()
      if (open !== (t === '}' ? '{' : '[')) problems.push(`unbalanced ${t} at token ${k}`)
    } else if (t === '->') edges.push(tokens[k - 1]!, tokens[k + 1]!)
    else if (tokens[k + 1] === '[' && tokens[k - 1] !== '->' && !['node', 'edge', 'graph'].includes(t)) declared.add(t)
  }
  if (stack.length) problems.push(`${stack.length} bracket(s) not closed`)
  if (tokens.at(-1) !== '}') problems.push('does not end with }')
  for (const id of edges) if (!declared.has(id)) problems.push(`edge end ${id} not declared`)
  return problems
}
