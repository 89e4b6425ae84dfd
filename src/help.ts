/**
 * netctl's help: oclif's, but wrapped without splitting words. oclif wraps
 * help with wrap-ansi's hard mode, which cuts a word at the margin
 * ("flanne" / "l-udp" at 80 columns); here a line breaks only between words,
 * and a word wider than the line (a long list of options) is left whole.
 */
import {CommandHelp, Help} from '@oclif/core'
import wrapAnsi from 'wrap-ansi'

function softWrap(rendered: string, maxWidth: number, spacing: number): string {
  return wrapAnsi(rendered, maxWidth - spacing, {hard: false, trim: true})
}

class NetctlCommandHelp extends CommandHelp {
  override wrap(body: string, spacing = this.indentSpacing): string {
    return softWrap(this.render(body), this.opts.maxWidth, spacing)
  }
}

export default class NetctlHelp extends Help {
  protected override CommandHelpClass = NetctlCommandHelp

  override wrap(body: string, spacing = this.indentSpacing): string {
    return softWrap(this.render(body), this.opts.maxWidth, spacing)
  }
}
