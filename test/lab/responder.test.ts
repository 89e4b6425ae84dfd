import dgram from 'node:dgram'
import net from 'node:net'

import {afterEach, describe, expect, it} from 'vitest'

import {parseResponderArgs, startResponder} from '../../src/lab/responder.js'

describe("the lab's Service responder", () => {
  const open: dgram.Socket[] = []
  afterEach(() => {
    for (const s of open.splice(0)) s.close()
  })

  it('reads the pod name and its ports with their protocols, and refuses anything else with a usage line', () => {
    expect(parseResponderArgs(['pod-node1-1', '53/udp', '8080/tcp'])).toEqual({
      name: 'pod-node1-1',
      ports: [
        {port: 53, protocol: 'udp'},
        {port: 8080, protocol: 'tcp'},
      ],
    })
    expect(() => parseResponderArgs([])).toThrow('usage: responder.js NAME PORT/udp|PORT/tcp... (got: nothing)')
    expect(() => parseResponderArgs(['pod-node1-1'])).toThrow('usage:')
    expect(() => parseResponderArgs(['pod-node1-1', '53'])).toThrow('(got: pod-node1-1 53)')
    expect(() => parseResponderArgs(['pod-node1-1', '70000/tcp'])).toThrow('(got: pod-node1-1 70000/tcp)')
    expect(() => parseResponderArgs(['pod-node1-1', '53/sctp'])).toThrow('usage:')
  })

  it('answers every datagram of many sent together, each to its own sender, with the name', async () => {
    // a port the kernel picks
    const [socket] = startResponder('pod-node1-1', [{port: 0, protocol: 'udp'}]) as dgram.Socket[]
    open.push(socket!)
    await new Promise((resolve) => socket!.once('listening', resolve))
    const {port} = socket!.address()
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

  it('answers every connection of many made together with the name, also those that send a line first', async () => {
    const [server] = startResponder('pod-node1-1', [{port: 0, protocol: 'tcp'}]) as net.Server[]
    await new Promise((resolve) => server!.once('listening', resolve))
    const {port} = server!.address() as net.AddressInfo
    try {
      const answers = await Promise.all(
        Array.from(
          {length: 32},
          (_, i) =>
            new Promise<string>((resolve, reject) => {
              const conn = net.connect(port, '127.0.0.1', () => {
                if (i % 2 === 0) conn.write('q\n')
              })
              let got = ''
              conn.on('data', (d) => (got += d.toString()))
              conn.on('end', () => resolve(got))
              conn.on('error', reject)
            }),
        ),
      )
      expect(answers).toEqual(Array(32).fill('pod-node1-1\n'))
    } finally {
      server!.close()
    }
  })
})
