import {constants, unlinkSync} from 'node:fs'
import {chmod, type FileHandle, open, readFile, rename, stat, unlink} from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'
import {createGzip} from 'node:zlib'

import {EnvironmentError, UsageError} from '../errors.js'
import {onInterrupt} from './cleanup.js'

/** Read a file the user named; a missing or unreadable file is one usage-error line naming it. */
export async function readUserFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new UsageError(`${file}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`)
  }
}

/** Why a path cannot be written, in words (the errno alone says little to a user). */
function unwritable(file: string, error: unknown): EnvironmentError {
  const e = error as NodeJS.ErrnoException
  const why: Record<string, string> = {
    ENOENT: `no such directory ${path.dirname(file)}`,
    ENOTDIR: `${path.dirname(file)} is not a directory`,
    EISDIR: 'it is a directory',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
  }
  return new EnvironmentError(`cannot write ${file}: ${why[e.code ?? ''] ?? e.message.split('\n')[0]}`)
}

/** An output file being written: replaced whole on commit, or left as it was. */
export interface UserOutput {
  readonly file: string
  /**
   * write the text, or its pieces one after another (never joined: a big snapshot is more than one
   * string can hold), gzipped if asked, and put it in place of the file (atomically: a reader sees the
   * old file or the new one)
   */
  commit(text: string | Iterable<string> | AsyncIterable<string | Buffer>, opts?: {gzip?: boolean}): Promise<void>
  /** give up: the temporary file goes, the user's file stays as it was */
  discard(): Promise<void>
}

/**
 * Open an output file the user named (`--output-file FILE`) before the work begins, so
 * that one that cannot be written is said before anything is done. The data
 * goes to a temporary file in the same directory (a rename there is atomic)
 * and replaces FILE only on commit; discard, an error, an exit or Ctrl-C
 * before that remove the temporary file and leave FILE untouched.
 */
export async function openUserOutput(file: string): Promise<UserOutput> {
  const existing = await stat(file).catch(() => undefined)
  if (existing?.isDirectory()) throw new EnvironmentError(`cannot write ${file}: it is a directory`)
  const tmp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`,
  )
  let handle: FileHandle
  try {
    // O_EXCL: never write through a name someone else put there
    handle = await open(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
      existing ? existing.mode & 0o777 : 0o666,
    )
  } catch (error) {
    throw unwritable(file, error)
  }
  let done = false
  const removeSync = (): void => {
    if (done) return
    done = true
    try {
      unlinkSync(tmp)
    } catch {
      // already gone
    }
  }
  // interrupted: the temporary file goes, then the process dies of the signal as the default would
  const held = onInterrupt(`removing ${tmp}`, removeSync)
  const stopListening = (): void => {
    process.off('exit', removeSync)
    held.release()
  }
  process.on('exit', removeSync)

  const discard = async (): Promise<void> => {
    stopListening()
    await handle.close().catch(() => {})
    if (done) return
    done = true
    await unlink(tmp).catch(() => {})
  }
  return {
    file,
    discard,
    async commit(
      text: string | Iterable<string> | AsyncIterable<string | Buffer>,
      opts: {gzip?: boolean} = {},
    ): Promise<void> {
      try {
        if (typeof text === 'string' && !opts.gzip) await handle.writeFile(text)
        else if (!opts.gzip)
          for await (const piece of text) await (typeof piece === 'string' ? handle.write(piece) : handle.write(piece))
        else
          for await (const buf of Readable.from(typeof text === 'string' ? [text] : text).pipe(createGzip()))
            await handle.write(buf as Buffer)
        await handle.sync()
        await handle.close()
        // the mode given to open() was masked by the umask; an existing file keeps its own
        if (existing) await chmod(tmp, existing.mode & 0o777)
        await rename(tmp, file)
        done = true
        stopListening()
      } catch (error) {
        await discard()
        throw unwritable(file, error)
      }
    },
  }
}
