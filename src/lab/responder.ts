/**
 * A lab Service endpoint's UDP answer: every datagram to one of its ports is answered with the
 * pod's name, from the one socket it came to, however many arrive together. Run as
 * `ip netns exec <pod> node responder.js <name> <port>...` (src/lab/agents/index.ts); it never
 * leaves that namespace, and SIGTERM (`lab down`) stops it.
 *
 * Its TCP ports keep socat (`TCP4-LISTEN,fork`): a connection is the answer there. socat's UDP fork
 * mode cannot stand in for a server: its child writes the datagram into the command it runs, and
 * when that command has already printed the name and exited the write fails and the name is never
 * sent (a quarter of the datagrams sent together, and now and then a single one).
 */
import dgram from 'node:dgram'
import {pathToFileURL} from 'node:url'

/** `<name> <port>...` as the agents script passes them; an error line for anything else. */
export function parseResponderArgs(argv: readonly string[]): {name: string; ports: number[]} {
  const [name, ...rest] = argv
  const ports = rest.map(Number)
  if (!name || ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535))
    throw new Error(`usage: responder.js NAME PORT... (got: ${argv.join(' ') || 'nothing'})`)
  return {name, ports}
}

/** Bind a UDP socket on each port (every address of the namespace) that answers each datagram with NAME and a newline. */
export function startResponder(name: string, ports: readonly number[]): dgram.Socket[] {
  const answer = Buffer.from(`${name}\n`)
  return ports.map((port) => {
    const socket = dgram.createSocket('udp4')
    socket.on('message', (_query, from) => socket.send(answer, from.port, from.address))
    // a failed bind (the port held by another process) ends the process with the error on stderr
    socket.on('error', (error) => {
      process.stderr.write(`responder ${name}: udp ${port}: ${error.message}\n`)
      process.exit(1)
    })
    socket.bind(port)
    return socket
  })
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const {name, ports} = parseResponderArgs(process.argv.slice(2))
    startResponder(name, ports)
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`)
    process.exit(2)
  }
}
