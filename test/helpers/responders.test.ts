import {describe, expect, it} from 'vitest'

import {listensOn} from './responders.js'

// `ss -Hltunp` in a lab pod: the lab's Service responder (pid 4100) and a test's (pid 4242)
const SS = `udp   UNCONN 0      0            0.0.0.0:53         0.0.0.0:*    users:(("MainThread",pid=4100,fd=20))
udp   UNCONN 0      0            0.0.0.0:80         0.0.0.0:*    users:(("MainThread",pid=4242,fd=22))
tcp   LISTEN 0      511          0.0.0.0:8080       0.0.0.0:*    users:(("MainThread",pid=4100,fd=21))
tcp   LISTEN 0      511          0.0.0.0:80         0.0.0.0:*    users:(("MainThread",pid=4242,fd=21))
tcp   LISTEN 0      511             [::]:81            [::]:*    users:(("MainThread",pid=42420,fd=23))
`

describe("a test's responder is ready once its own process listens on each of its ports", () => {
  it('sees the ports that process listens on, with their protocols', () => {
    expect(
      listensOn(SS, 4242, [
        {port: 80, protocol: 'tcp'},
        {port: 80, protocol: 'udp'},
      ]),
    ).toBe(true)
    expect(listensOn(SS, 4100, [{port: 8080, protocol: 'tcp'}])).toBe(true)
  })

  it('is not ready while a port is missing, held by another process, or open only for the other protocol', () => {
    expect(listensOn(SS, 4242, [{port: 81, protocol: 'tcp'}])).toBe(false)
    expect(listensOn(SS, 4242, [{port: 8080, protocol: 'tcp'}])).toBe(false)
    expect(listensOn(SS, 4100, [{port: 53, protocol: 'tcp'}])).toBe(false)
    expect(listensOn('', 4242, [{port: 80, protocol: 'tcp'}])).toBe(false)
  })
})
