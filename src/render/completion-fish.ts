/**
 * `netctl completion fish`: a fish completion script made from the commands
 * oclif knows (its manifest), as kubectl's `completion fish` is made from its
 * commands. @oclif/plugin-autocomplete covers bash and zsh; fish it has not.
 *
 * The script completes command words where a topic or the top level is typed,
 * then the flags (with their fixed values) and argument values of the command
 * the leading words name. Everything it quotes comes from netctl's own
 * commands, quoted for fish all the same.
 */
import {printable} from './color.js'

/** What the script needs of one command (oclif's Command.Loadable has it all). */
export interface CompletionCommand {
  id: string
  summary?: string
  description?: string
  hidden?: boolean
  flags: Record<
    string,
    {
      name: string
      char?: string
      type: 'boolean' | 'option'
      summary?: string
      description?: string
      options?: readonly string[]
      hidden?: boolean
      aliases?: string[]
    }
  >
  args: Record<string, {options?: readonly string[]}>
}

export interface CompletionTopic {
  name: string
  description?: string
  hidden?: boolean
}

/** A fish single-quoted string: only \ and ' are special there. */
function quote(s: string): string {
  return `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`
}

/** One line of help for a candidate: its first sentence, printable, short. */
function describe(text: string | undefined, bin: string): string {
  // oclif's own commands write their summaries as templates (`Display help for <%= config.bin %>`)
  const first = printable(
    (text ?? '')
      .split('\n')[0]!
      .trim()
      .replace(/<%=\s*config\.bin\s*%>/g, bin),
  )
  const sentence = first.replace(/\. .*$/, '').replace(/\.$/, '')
  return sentence.length > 80 ? `${sentence.slice(0, 79)}…` : sentence
}

export function fishCompletion(bin: string, commands: CompletionCommand[], topics: CompletionTopic[]): string {
  const fn = `__${bin.replace(/\W/g, '_')}`
  const visible = commands.filter((c) => !c.hidden).sort((a, b) => a.id.localeCompare(b.id))
  const lines: string[] = [
    `# ${bin} completion for fish. Load it now:   ${bin} completion fish | source`,
    `# or for every session:   ${bin} completion fish > ~/.config/fish/completions/${bin}.fish`,
    '',
    `# the command words typed so far (up to the first flag), joined by spaces`,
    `function ${fn}_words`,
    '    set -l words (commandline -opc)',
    '    set -e words[1]',
    '    set -l out',
    '    for w in $words',
    "        string match -q -- '-*' $w; and break",
    '        set -a out $w',
    '    end',
    '    string join " " -- $out',
    'end',
    '',
    `# true when exactly these words are typed (a topic, or nothing yet)`,
    `function ${fn}_at`,
    `    test "$(${fn}_words)" = "$argv[1]"`,
    'end',
    '',
    `# true when the words typed begin with this command`,
    `function ${fn}_using`,
    `    set -l typed "$(${fn}_words) "`,
    `    string match -q -- "$argv[1] *" $typed`,
    'end',
    '',
    `complete -c ${bin} -f`,
  ]

  // command words: under each topic (and the top level), the next word of every command and topic below it
  const next = new Map<string, Map<string, string>>()
  const add = (parent: string, word: string, text: string): void => {
    const words = next.get(parent) ?? new Map<string, string>()
    if (!words.has(word) || text) words.set(word, text)
    next.set(parent, words)
  }
  const topicText = new Map(topics.filter((t) => !t.hidden).map((t) => [t.name, t.description]))
  for (const c of visible) {
    const parts = c.id.split(':')
    for (let i = 0; i < parts.length; i++) {
      const id = parts.slice(0, i + 1).join(':')
      const text = i === parts.length - 1 ? (c.summary ?? c.description) : topicText.get(id)
      add(parts.slice(0, i).join(' '), parts[i]!, describe(text, bin))
    }
  }
  for (const [parent, words] of [...next].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push('', `# after '${bin}${parent ? ` ${parent}` : ''}'`)
    for (const [word, text] of words)
      lines.push(
        `complete -c ${bin} -n ${quote(`${fn}_at ${quote(parent)}`)} -a ${quote(word)}${text ? ` -d ${quote(text)}` : ''}`,
      )
  }

  for (const c of visible) {
    const words = c.id.split(':').join(' ')
    const when = `-n ${quote(`${fn}_using ${quote(words)}`)}`
    lines.push('', `# ${bin} ${words}`)
    for (const f of Object.values(c.flags)
      .filter((x) => !x.hidden)
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const names = [
        `-l ${f.name}`,
        ...(f.aliases ?? []).map((a) => `-l ${a}`),
        ...(f.char ? [`-s ${f.char}`] : []),
      ].join(' ')
      const value = f.type === 'boolean' ? '' : f.options?.length ? ` -x -a ${quote(f.options.join(' '))}` : ' -r -F'
      const text = describe(f.summary ?? f.description, bin)
      lines.push(`complete -c ${bin} ${when} ${names}${value}${text ? ` -d ${quote(text)}` : ''}`)
    }
    const values = Object.values(c.args).flatMap((a) => a.options ?? [])
    if (values.length > 0) lines.push(`complete -c ${bin} ${when} -a ${quote(values.join(' '))}`)
  }
  return `${lines.join('\n')}\n`
}
