import {spawn} from 'node:child_process'
import path from 'node:path'
import {createInterface} from 'node:readline'

import {describe, expect, it} from 'vitest'

import {CLEANUP_SIGNALS, CleanupStack, type SignalProcess} from '../../src/util/cleanup.js'
import {pollUntil} from '../../src/util/wait.js'
import {REPO} from '../helpers/cli.js'

/** A process the stack can listen on, be killed and exit through, recording all of it. */
function fakeProcess() {
  const listeners = new Map<NodeJS.Signals, Set<(s: NodeJS.Signals) => void>>()
  const events: string[] = []
  const proc: SignalProcess = {
    pid: 4242,
    on: (s, l) => listeners.set(s, (listeners.get(s) ?? new Set()).add(l)),
    off: (s, l) => listeners.get(s)?.delete(l),
    kill: (pid, s) => void events.push(`kill ${pid} ${s}`),
    exit: (code) => void events.push(`exit ${code}`),
    warn: (line) => void events.push(line),
  }
  const listening = (): NodeJS.Signals[] => CLEANUP_SIGNALS.filter((s) => (listeners.get(s)?.size ?? 0) > 0)
  return {proc, events, listening}
}

/** Let every queued promise callback run. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 0))

describe('the cleanup stack', () => {
  it('listens only while it holds something', () => {
    const {proc, listening} = fakeProcess()
    const stack = new CleanupStack(proc)
    expect(listening()).toEqual([])
    const a = stack.push('a', () => {})
    const b = stack.push('b', () => {})
    expect(listening()).toEqual(['SIGINT', 'SIGTERM', 'SIGHUP'])
    a.release()
    expect(listening()).toHaveLength(3)
    b.release()
    expect(listening()).toEqual([])
  })

  it('runs what it holds newest first, each to its end before the next, then dies of the signal', async () => {
    const {proc, events, listening} = fakeProcess()
    const stack = new CleanupStack(proc)
    let finishRollback!: () => void
    stack.push('deleting debug pods', (s) => void events.push(`pods ${s}`))
    const gone = stack.push('never run', () => void events.push('released one ran'))
    stack.push('rolling back', async (s) => {
      events.push(`rollback starts ${s}`)
      await new Promise<void>((r) => (finishRollback = r))
      events.push('rollback done')
    })
    gone.release()
    stack.signal('SIGTERM')
    await settle()
    // the pods wait for the rollback that works through them
    expect(events).toEqual(['rollback starts SIGTERM'])
    finishRollback()
    await settle()
    expect(events).toEqual(['rollback starts SIGTERM', 'rollback done', 'pods SIGTERM', 'kill 4242 SIGTERM'])
    // the signal is re-raised with nothing listening, so it kills
    expect(listening()).toEqual([])
  })

  it('a second signal says what still runs and what is left; a third exits at once with 128 + signal', async () => {
    const {proc, events} = fakeProcess()
    const stack = new CleanupStack(proc)
    stack.push('deleting 3 debug pods', () => {})
    stack.push('rolling the backend switch back', () => new Promise<void>(() => {}))
    stack.signal('SIGINT')
    await settle()
    stack.signal('SIGINT')
    expect(events).toEqual([
      'netctl: SIGINT again: still rolling the backend switch back; then deleting 3 debug pods; once more to exit at once',
    ])
    stack.signal('SIGINT')
    expect(events.slice(1)).toEqual([
      'netctl: SIGINT a third time: exiting now, not finished: rolling the backend switch back; deleting 3 debug pods',
      'exit 130',
    ])
  })

  it('ends as its cleanups ask: resume leaves the ending to the work, exit uses the status, resume wins', async () => {
    for (const [endings, expected] of [
      [['exit'], ['a', 'exit 143']],
      [
        ['exit', 'resume'],
        ['b', 'a'],
      ],
      [
        ['resume', 'exit'],
        ['b', 'a'],
      ],
      [
        ['die', 'exit'],
        ['b', 'a', 'exit 143'],
      ],
    ] as const) {
      const {proc, events, listening} = fakeProcess()
      const stack = new CleanupStack(proc)
      stack.push('a', () => void events.push('a'), {ending: endings[0]})
      if (endings[1]) stack.push('b', () => void events.push('b'), {ending: endings[1]})
      stack.signal('SIGTERM')
      await settle()
      expect(events, endings.join(' ')).toEqual(expected)
      if (endings.includes('resume' as never)) {
        // the work ends the process: a later signal is still the stack's to count
        expect(listening()).toHaveLength(3)
        stack.signal('SIGTERM')
        expect(events.at(-1)).toBe('netctl: SIGTERM again: still finishing; once more to exit at once')
      }
    }
  })

  it('a cleanup that fails is said in one line and the rest still run; one pushed while unwinding runs too', async () => {
    const {proc, events} = fakeProcess()
    const stack = new CleanupStack(proc)
    stack.push('ending 1 ProxyCommand', () => void events.push('proxy'))
    stack.push('deleting 1 debug pod', () => {
      throw new Error('connection refused\nat somewhere')
    })
    stack.push('rolling back', () => {
      events.push('rollback')
      stack.push('deleting the pod the rollback made', () => void events.push('late pod'))
    })
    stack.signal('SIGINT')
    await settle()
    expect(events).toEqual([
      'rollback',
      'late pod',
      'netctl: deleting 1 debug pod: connection refused',
      'proxy',
      'kill 4242 SIGINT',
    ])
  })
})

describe('the cleanup stack of a real process', () => {
  it(
    'Ctrl-C runs it newest first and the process dies of SIGINT; a second says what runs, a third exits 130',
    {timeout: 30_000},
    async () => {
      // the source through tsx: the build bundles this module into a chunk, it has no file of its own
      const mod = path.join(REPO, 'src', 'util', 'cleanup.ts')
      const script = [
        `const {onInterrupt} = await import(${JSON.stringify(mod)})`,
        `onInterrupt('first', () => console.log('first ran'))`,
        `onInterrupt('slow', async (s) => { console.log('slow ran ' + s); if (process.argv[1] === 'hang') await new Promise(() => {}) })`,
        `console.log('ready')`,
        'setInterval(() => {}, 1000)',
      ].join('\n')
      const start = (mode: string) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, mode], {
          cwd: REPO,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        const lines: string[] = []
        let stderr = ''
        child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
        const ready = new Promise<void>((resolve) =>
          createInterface({input: child.stdout}).on('line', (l) => {
            lines.push(l)
            if (l === 'ready') resolve()
          }),
        )
        const ended = new Promise<NodeJS.Signals | number | null>((resolve) =>
          child.once('close', (code, sig) => resolve(sig ?? code)),
        )
        return {child, lines, ready, ended, stderr: () => stderr}
      }

      const once = start('quick')
      await once.ready
      once.child.kill('SIGINT')
      expect(await once.ended).toBe('SIGINT')
      expect(once.lines).toEqual(['ready', 'slow ran SIGINT', 'first ran'])

      const stuck = start('hang')
      await stuck.ready
      stuck.child.kill('SIGINT')
      await pollUntil(() => (stuck.lines.includes('slow ran SIGINT') ? true : undefined), {
        timeoutMs: 10_000,
        intervalMs: 20,
        reason: 'the slow cleanup never ran',
      })
      stuck.child.kill('SIGINT')
      await pollUntil(() => (stuck.stderr().includes('\n') ? true : undefined), {
        timeoutMs: 10_000,
        intervalMs: 20,
        reason: 'nothing said on the second SIGINT',
      })
      expect(stuck.stderr()).toBe('netctl: SIGINT again: still slow; then first; once more to exit at once\n')
      stuck.child.kill('SIGINT')
      expect(await stuck.ended).toBe(130)
      expect(stuck.stderr().split('\n')[1]).toBe('netctl: SIGINT a third time: exiting now, not finished: slow; first')
      expect(stuck.lines).not.toContain('first ran')
    },
  )
})
