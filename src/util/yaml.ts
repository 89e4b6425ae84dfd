import {parseDocument, stringify} from 'yaml'

/** What is wrong with a YAML text, for the caller's one line naming the file. */
export interface YamlProblem {
  line?: number
  why: string
}

/**
 * A YAML (or JSON) text a user gave, as plain data, or what is wrong with it:
 * a syntax error (with its line), or aliases that expand without bound (the
 * "billion laughs" alias bomb, which the yaml library stops while converting).
 */
export function parseUserYaml(text: string): {data: unknown} | {problem: YamlProblem} {
  // a key given twice is an error, as kubectl and the API server take it
  const doc = parseDocument(text, {prettyErrors: true, uniqueKeys: true})
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!
    const line = e.linePos?.[0]?.line
    const why = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
    return {problem: {...(line ? {line} : {}), why}}
  }
  try {
    return {data: doc.toJS()}
  } catch (error) {
    // the library's words ("Excessive alias count indicates a resource exhaustion attack") said plainly
    if (error instanceof ReferenceError && /alias/i.test(error.message))
      return {problem: {why: 'its aliases expand too far, as an alias bomb does'}}
    return {problem: {why: (error as Error).message.split('\n')[0]!}}
  }
}

/**
 * Data as YAML, as netctl writes it (a lab's inventory, -o yaml): no folded lines; `plainJson`
 * (-o yaml) converts as JSON does first (toJSON, undefined dropped) and writes no anchors.
 */
export function yamlText(data: unknown, opts: {plainJson?: boolean} = {}): string {
  return opts.plainJson
    ? stringify(JSON.parse(JSON.stringify(data)) as unknown, {aliasDuplicateObjects: false, lineWidth: 0})
    : stringify(data, {lineWidth: 0})
}
