import {readFile} from 'node:fs/promises'

import {UsageError} from '../errors.js'

/** Read a file the user named; a missing or unreadable file is one usage-error line naming it. */
export async function readUserFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new UsageError(`${file}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`)
  }
}
