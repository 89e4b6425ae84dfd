/**
 * Start a debug pod and hold it until this process is signalled: the test of
 * SIGINT/SIGTERM cleanup runs this as a separate process and kills it.
 *   node --import tsx test/helpers/debug-pod-holder.ts KUBECONFIG NODE
 * Prints the pod as one JSON line once it is Running.
 */
import {KubeDebugTransport} from '../../src/transport/kube-debug.js'

const [kubeconfig, node] = process.argv.slice(2)
if (!kubeconfig || !node) {
  process.stderr.write('usage: debug-pod-holder.ts KUBECONFIG NODE\n')
  process.exit(2)
}
const transport = new KubeDebugTransport({kube: {kubeconfig}, node})
await transport.start()
process.stdout.write(`${JSON.stringify(await transport.pod())}\n`)
// stay alive until a signal arrives; the transport's handlers delete the pod and re-raise it
setInterval(() => undefined, 60_000)
