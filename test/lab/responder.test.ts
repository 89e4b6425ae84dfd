import dgram from 'node:dgram'

import {afterEach, describe, expect, it} from 'vitest'

import {parseResponderArgs, startResponder} from '../../src/lab/responder.js'

describe('the lab UDP responder', () => {
  const open: dgram.Socket[] = []
  afterEach(() => {
    for (const s of open.splice(0)) s.close()
  })

  it('reads the pod name and its ports, and refuses anything else with a usage line', () => {
    expect(parseResponderArgs(['pod-node1-1', '53', '5353'])).toEqual({name: 'pod-node1-1', ports: [53, 5353]})
    expect(() => parseResponderArgs([])).toThrow('usage: responder.js NAME PORT... (got: nothing)')
    expect(() => parseResponderArgs(['pod-node1-1'])).toThrow('usage:')
    expect(() => parseResponderArgs(['pod-node1-1', '70000'])).toThrow('(got: pod-node1-1 70000)')
  })

  it('answers every datagram of many sent together, each to its own sender, with the name', async () => {
    // on loopback, an unprivileged port the kernel picks: bound first to learn it, then handed over
    const probe = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve))
    const port = probe.address().port
    probe.close()
    open.push(...startResponder('pod-node1-1', [port]))
    await new Promise((resolve) => open[0]!.once('listening', resolve))
    const answers = await Promise.all(
      Array.from({length: 32}, async () => {
        const client = dgram.createSocket('udp4')
        open.push(client)
        const answer = new Promise<string>((resolve) => client.once('message', (m) => resolve(m.toString())))
        client.send('q\n', port, '127.0.0.1')
        return answer
      }),
    )
    expect(answers).toEqual(Array(32).fill('pod-node1-1\n'))
  })
})
