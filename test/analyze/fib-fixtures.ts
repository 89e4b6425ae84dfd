import {readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'

import {REPO} from '../helpers/cli.js'
import type {RawIpState} from '../helpers/ip-json.js'
import type {RecordedQuery} from './kernel-oracle.js'

/** One namespace recorded by record-fib-fixtures.ts. */
export interface FibFixture {
  file: string
  description: string
  recorded: {kernel: string; iproute2: string; netns: string}
  ip: RawIpState
  text: {route4: string; rule4: string; neigh: string}
  queries: RecordedQuery[]
  pings?: Array<{dst: string; ok: boolean}>
  arp?: Array<{pod: string; sender: string; dev: string; pinged: boolean}>
}

export const FIXTURE_DIR = path.join(REPO, 'fixtures/analyze')

export function loadFibFixtures(): FibFixture[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({
      file,
      ...(JSON.parse(readFileSync(path.join(FIXTURE_DIR, file), 'utf8')) as Omit<FibFixture, 'file'>),
    }))
}

export function loadFibFixture(file: string): FibFixture {
  const f = loadFibFixtures().find((x) => x.file === file)
  if (!f) throw new Error(`no fixture ${file} in ${FIXTURE_DIR}`)
  return f
}

/** The lines of ip's text output, trailing blanks gone, multipath nexthop lines folded into their route. */
export function textLines(text: string): string[] {
  const out: string[] = []
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+$/, '')
    if (line === '') continue
    if (line.startsWith('\t') && out.length > 0) out[out.length - 1] += `\n${line}`
    else out.push(line)
  }
  return out
}
