/** Real traffic to a lab's Services, from a pod's namespace: what the kernel answers, to compare with a walk. */
import {nsExec} from './lab.js'

/** One TCP connect (nc, 1 s); the answering pod's name, as the lab's responders print it ('' without an answer). */
export async function connectFrom(netns: string, ip: string, port: number): Promise<string> {
  const r = await nsExec(netns, ['sh', '-c', `echo q | nc -w 1 ${ip} ${port}`], 10_000)
  return r.stdout.trim()
}

/** `n` answers, one after the other (kube-proxy picks an endpoint per connection). */
export async function answers(n: number, ask: () => Promise<string>): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(await ask())
  return out
}
