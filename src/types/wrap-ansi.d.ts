// wrap-ansi 7 (the major @oclif/core resolves to at the top of node_modules) ships no types.
declare module 'wrap-ansi' {
  export default function wrapAnsi(input: string, columns: number, options?: {hard?: boolean; wordWrap?: boolean; trim?: boolean}): string
}
