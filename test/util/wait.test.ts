import {describe, expect, it} from 'vitest'

import {NetctlError} from '../../src/errors.js'
import {pollUntil, sleep, within} from '../../src/util/wait.js'

describe('sleep', () => {
  it('resolves after the time asked', async () => {
    const t0 = Date.now()
    await sleep(30)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25)
  })
})

describe('pollUntil', () => {
  it('returns the first value an attempt gives, after pausing between attempts', async () => {
    let calls = 0
    const t0 = Date.now()
    const v = await pollUntil(() => (++calls === 3 ? 'ready' : undefined), {timeoutMs: 5000, intervalMs: 20})
    expect(v).toBe('ready')
    expect(calls).toBe(3)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(35)
  })

  it('keeps a falsy value that is not undefined (0, false, empty string)', async () => {
    expect(await pollUntil(() => 0, {timeoutMs: 100, intervalMs: 10})).toBe(0)
    expect(await pollUntil(() => false, {timeoutMs: 100, intervalMs: 10})).toBe(false)
  })

  it('without a reason, returns undefined at the deadline, having tried once more there', async () => {
    const at: number[] = []
    const t0 = Date.now()
    const v = await pollUntil(() => void at.push(Date.now()), {timeoutMs: 100, intervalMs: 40})
    expect(v).toBeUndefined()
    expect(at.length).toBeGreaterThanOrEqual(2)
    // the last pause is cut to what is left: the last try is at the deadline, not an interval past it
    expect(at.at(-1)! - t0).toBeGreaterThanOrEqual(95)
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeLessThanOrEqual(40 + 500)
  })

  it('with a timeout of 0, tries exactly once', async () => {
    let calls = 0
    expect(await pollUntil(() => void calls++, {timeoutMs: 0, intervalMs: 1000})).toBeUndefined()
    expect(calls).toBe(1)
  })

  it('with a reason, throws a NetctlError saying it; a function reason is asked only at the end and may be async', async () => {
    await expect(
      pollUntil(() => undefined, {timeoutMs: 30, intervalMs: 10, reason: 'not ready after 0.03s'}),
    ).rejects.toThrow(new NetctlError('not ready after 0.03s'))
    let last = 0
    const e = await pollUntil(() => void last++, {
      timeoutMs: 30,
      intervalMs: 10,
      reason: async () => `still nothing after ${last} tries`,
    }).catch((error: unknown) => error)
    expect(e).toBeInstanceOf(NetctlError)
    expect((e as Error).message).toBe(`still nothing after ${last} tries`)
  })

  it('shares one absolute deadline between polls', async () => {
    const deadline = Date.now() + 60
    const t0 = Date.now()
    expect(await pollUntil(() => undefined, {deadline, intervalMs: 10})).toBeUndefined()
    // the second poll starts past the deadline: one attempt, no wait
    let calls = 0
    expect(await pollUntil(() => void calls++, {deadline, intervalMs: 10})).toBeUndefined()
    expect(calls).toBe(1)
    expect(Date.now() - t0).toBeLessThan(1000)
  })

  it('stops early, with undefined, once aborted; an error an attempt throws ends the poll', async () => {
    const abort = {aborted: false}
    let calls = 0
    const v = await pollUntil(
      () => {
        if (++calls === 2) abort.aborted = true
        return undefined
      },
      {timeoutMs: 5000, intervalMs: 10, abort, reason: 'never said'},
    )
    expect(v).toBeUndefined()
    expect(calls).toBe(2)
    await expect(
      pollUntil(
        () => {
          throw new Error('the daemon stopped')
        },
        {timeoutMs: 5000, intervalMs: 10},
      ),
    ).rejects.toThrow('the daemon stopped')
  })
})

describe('within', () => {
  it('gives the promise when it settles in time, the fallback when it does not', async () => {
    expect(await within(Promise.resolve('answer'), 1000, 'late')).toBe('answer')
    const t0 = Date.now()
    expect(await within(new Promise(() => {}), 30, 'late')).toBe('late')
    expect(Date.now() - t0).toBeLessThan(1000)
    await expect(within(Promise.reject(new Error('refused')), 1000, 'late')).rejects.toThrow('refused')
  })
})
