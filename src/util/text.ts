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
