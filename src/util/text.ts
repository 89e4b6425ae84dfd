import {isAscii} from 'node:buffer'

/**
 * A value from a cluster made safe for a terminal: control characters
 * (newlines, ESC of an ANSI sequence, C1 controls, DEL) become `?`, so a
 * hostile node or interface name can neither break a line of output apart nor
 * drive the terminal. Everything text output prints from a snapshot goes
 * through here.
 */
export function printable(value: string | number): string {
  return String(value).replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}

/**
 * BYTES[START, END) of UTF-8 as a string. Text that is all ASCII (a snapshot always is, in
 * practice) is read as latin1, the same characters: Node then hands V8 a string kept outside
 * its heap once it is over ~1 MB, where a string of the V8 heap that big is a fresh mapping
 * whose pages fault in one by one — measured, a 480 MB file read as 466 KB lines spent more
 * time there than parsing them. Slices of such a string share its characters.
 */
export function decodeUtf8(bytes: Buffer, start = 0, end = bytes.length): string {
  return isAscii(bytes.subarray(start, end)) ? bytes.toString('latin1', start, end) : bytes.toString('utf8', start, end)
}

/** `1 endpoint`, `2 endpoints` (`many` for an irregular plural). */
export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`
