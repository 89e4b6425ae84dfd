/** Real traffic to a lab's Services, from a pod's namespace: what the kernel answers, to compare with a walk. */
import {nsExec} from './lab.js'

/**
 * One TCP connect (nc, `waitS` seconds); the answering pod's name, as the lab's responders print it
 * ('' without an answer). Where every connect must answer, give the responder more than a second: on a
 * loaded machine its answer can take that long. Nothing is sent: a responder that closes before it
 * read what a client sent resets the connection (TCPAbortOnClose), and the client may lose the
 * answer it had — one connect in a few hundred under load, CI's lost answers.
 */
export async function connectFrom(netns: string, ip: string, port: number, waitS = 1): Promise<string> {
  const r = await nsExec(netns, ['sh', '-c', `nc -w ${waitS} ${ip} ${port} </dev/null`], 10_000 + waitS * 1000)
  return r.stdout.trim()
}

/** `n` answers, one after the other (kube-proxy picks an endpoint per connection). */
export async function answers(n: number, ask: () => Promise<string>): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(await ask())
  return out
}

/** One UDP query (socat, a new source port each time): the answering pod's name, '' without an answer. */
export async function queryFrom(netns: string, ip: string, port: number): Promise<string> {
  const r = await nsExec(netns, ['sh', '-c', `echo q | socat -t 2 -T 3 - UDP4:${ip}:${port}`], 20_000)
  return r.stdout.trim()
}
