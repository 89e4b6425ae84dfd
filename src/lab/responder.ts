/**
 * A lab Service endpoint's answer: the pod's name, to every datagram on its UDP ports and on every
 * connection to its TCP ports, however many arrive together. Run as
 * `ip netns exec <pod> node responder.js <name> <port>/<udp|tcp>...` (src/lab/agents/index.ts); it
 * never leaves that namespace, and SIGTERM (`lab down`) stops it.
 *
 * It stands where socat stood (`UDP4-RECVFROM,fork` / `TCP4-LISTEN,fork` with `SYSTEM:echo NAME`),
 * which lost answers: its child writes what the client sent into the command it runs, and when that
 * command has already printed the name and exited the write fails and the name is never sent — a
 * quarter of the datagrams sent together, one connection in fifteen of those that send a line.
 */
import dgram from 'node:dgram'
import net from 'node:net'
import {pathToFileURL} from 'node:url'

export interface ResponderPort {
  port: number
  protocol: 'udp' | 'tcp'
}

/** `<name> <port>/<udp|tcp>...` as the agents script passes them; an error line for anything else. */
export function parseResponderArgs(argv: readonly string[]): {name: string; ports: ResponderPort[]} {
  const [name, ...rest] = argv
  const ports = rest.map((arg): ResponderPort | undefined => {
    const m = /^(\d{1,5})\/(udp|tcp)$/.exec(arg)
    const port = Number(m?.[1])
    return m && port >= 1 && port <= 65535 ? {port, protocol: m[2] as 'udp' | 'tcp'} : undefined
  })
  if (!name || ports.length === 0 || ports.some((p) => p === undefined))
    throw new Error(`usage: responder.js NAME PORT/udp|PORT/tcp... (got: ${argv.join(' ') || 'nothing'})`)
  return {name, ports: ports as ResponderPort[]}
}

/** A listener that cannot be had (the port held by another process) ends the process with the error on stderr. */
function fatal(name: string, p: ResponderPort) {
  return (error: Error): never => {
    process.stderr.write(`responder ${name}: ${p.protocol} ${p.port}: ${error.message}\n`)
    process.exit(1)
  }
}

/**
 * Listen on each port (every address of the namespace): a datagram is answered with NAME and a
 * newline from the socket it came to; a connection gets NAME and a newline, then the end of the
 * server's side, and whatever the client sends is read and dropped.
 */
export function startResponder(name: string, ports: readonly ResponderPort[]): Array<dgram.Socket | net.Server> {
  const answer = Buffer.from(`${name}\n`)
  return ports.map((p) => {
    if (p.protocol === 'udp') {
      const socket = dgram.createSocket('udp4')
      socket.on('message', (_query, from) => socket.send(answer, from.port, from.address))
      socket.on('error', fatal(name, p))
      socket.bind(p.port, '0.0.0.0')
      return socket
    }
    const server = net.createServer((conn) => {
      // a client gone before the answer (a port scan, nc -z) is no error of the responder's
      conn.on('error', () => conn.destroy())
      conn.resume()
      conn.end(answer)
    })
    server.on('error', fatal(name, p))
    server.listen(p.port, '0.0.0.0')
    return server
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
