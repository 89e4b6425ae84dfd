import {EventEmitter} from 'node:events'

/** A terminal-like stream for ink: 100 columns, and every frame ink wrote kept. */
export class FakeTty extends EventEmitter {
  readonly isTTY = true
  readonly columns = 100
  readonly rows = 40
  frames: string[] = []
  write(s: string): boolean {
    this.frames.push(s)
    return true
  }
}
