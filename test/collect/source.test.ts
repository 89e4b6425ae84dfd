import {describe, expect, it} from 'vitest'

import {checkHostTemplate, nodeHost, resolveSource, type SourceFlags} from '../../src/collect/source.js'
import {ExitCode, UsageError} from '../../src/errors.js'
import {SOURCE_FLAG_NAMES, sourceFlagsGiven} from '../../src/flags.js'
import {netctl} from '../helpers/cli.js'

/** The usage error resolveSource raises for these flags (it must raise one). */
function refusal(flags: SourceFlags): UsageError {
  try {
    resolveSource(flags)
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).exitCode).toBe(ExitCode.USAGE)
    expect((error as Error).message).not.toContain('\n')
    return error as UsageError
  }
  throw new Error(`resolveSource accepted ${JSON.stringify(flags)}`)
}

describe('which cluster the flags name', () => {
  it('SOURCE_FLAG_NAMES: every flag resolveSource reads (what a --snapshot rules out), from the one flag list', () => {
    const read: Array<keyof SourceFlags> = [
      'lab',
      'inventory',
      'transport',
      'kubeconfig',
      'context',
      'namespace',
      'via',
      'debug-image',
      'debug-namespace',
      'ssh-host-template',
      'ssh-user',
      'ssh-identity',
      'ssh-jump',
      'ssh-config',
    ]
    expect([...SOURCE_FLAG_NAMES].sort()).toEqual([...read].sort())
    expect(sourceFlagsGiven({})).toEqual([])
    expect(sourceFlagsGiven({lab: 'demo', transport: 'ssh'})).toEqual(['--lab', '--transport'])
    expect(sourceFlagsGiven({namespace: 'shop', 'ssh-user': 'admin', via: 'ssh', 'ssh-config': 'cfg'})).toEqual([
      '--namespace',
      '--via',
      '--ssh-user',
      '--ssh-config',
    ])
  })

  it('a lab or an inventory file, with the transport choice (auto when not given)', () => {
    expect(resolveSource({lab: 'demo'})).toEqual({kind: 'lab', name: 'demo', transport: 'auto'})
    expect(resolveSource({inventory: 'c.yaml', transport: 'ssh'})).toEqual({
      kind: 'inventory',
      file: 'c.yaml',
      transport: 'ssh',
    })
  })

  it('neither: Kubernetes as kubectl finds it, through debug pods', () => {
    expect(resolveSource({})).toEqual({kind: 'kubernetes', kube: {}, via: 'debug-pod', debugPod: {}})
    expect(
      resolveSource({
        kubeconfig: 'k.yaml',
        context: 'prod',
        namespace: 'ops',
        'debug-image': 'mirror/netshoot:v0.13',
        'debug-namespace': 'netctl',
      }),
    ).toEqual({
      kind: 'kubernetes',
      kube: {kubeconfig: 'k.yaml', context: 'prod', namespace: 'ops'},
      via: 'debug-pod',
      debugPod: {image: 'mirror/netshoot:v0.13', namespace: 'netctl'},
    })
  })

  it('SSH flags make SSH the way in; --via ssh alone takes each node at its InternalIP', () => {
    expect(resolveSource({'ssh-user': 'admin', 'ssh-jump': 'bastion'})).toMatchObject({
      via: 'ssh',
      ssh: {hostTemplate: '{ip}', user: 'admin', jump: 'bastion'},
    })
    expect(resolveSource({via: 'ssh'})).toEqual({kind: 'kubernetes', kube: {}, via: 'ssh', ssh: {hostTemplate: '{ip}'}})
    expect(
      resolveSource({via: 'ssh', 'ssh-host-template': '{name}.example.net', 'ssh-identity': '/k/id'}),
    ).toMatchObject({ssh: {hostTemplate: '{name}.example.net', identityFile: '/k/id'}})
  })

  it('--ssh-config (-F) is the ssh config of every node reached over SSH: an inventory, a lab, or Kubernetes, which it sends --via ssh', () => {
    expect(resolveSource({inventory: 'c.yaml', 'ssh-config': 'cfg'})).toEqual({
      kind: 'inventory',
      file: 'c.yaml',
      transport: 'auto',
      sshConfig: 'cfg',
    })
    expect(resolveSource({lab: 'demo', transport: 'ssh', 'ssh-config': 'cfg'})).toEqual({
      kind: 'lab',
      name: 'demo',
      transport: 'ssh',
      sshConfig: 'cfg',
    })
    expect(resolveSource({'ssh-config': 'cfg'})).toEqual({
      kind: 'kubernetes',
      kube: {},
      via: 'ssh',
      ssh: {hostTemplate: '{ip}', configFile: 'cfg'},
    })
    expect(refusal({via: 'debug-pod', 'ssh-config': 'cfg'}).message).toBe(
      '--ssh-config is for --via ssh; the nodes are reached --via debug-pod',
    )
    expect(SOURCE_FLAG_NAMES).toContain('ssh-config')
  })

  it('two clusters at once is one line, exit 2', () => {
    expect(refusal({lab: 'a', inventory: 'b'}).message).toBe(
      '--lab and --inventory name two different clusters: give one',
    )
    expect(refusal({lab: 'a', kubeconfig: 'k'}).message).toBe(
      '--kubeconfig is for a Kubernetes cluster and cannot be used with --lab',
    )
    expect(refusal({inventory: 'f', context: 'prod'}).message).toBe(
      '--context is for a Kubernetes cluster and cannot be used with --inventory',
    )
    expect(refusal({lab: 'a', via: 'ssh'}).message).toContain('--via is for a Kubernetes cluster')
  })

  it('flags of one way in are refused with the other', () => {
    expect(refusal({via: 'debug-pod', 'ssh-user': 'root'}).message).toBe(
      '--ssh-user is for --via ssh; the nodes are reached --via debug-pod',
    )
    expect(refusal({via: 'ssh', 'debug-image': 'x'}).message).toBe(
      '--debug-image is for --via debug-pod, not --via ssh',
    )
    expect(refusal({'ssh-user': 'root', 'debug-namespace': 'x'}).message).toBe(
      '--debug-namespace is for --via debug-pod, not --via ssh',
    )
    expect(refusal({transport: 'netns'}).message).toMatch(/^--transport is for --lab and --inventory/)
  })

  it('an SSH host template takes {name} and {ip}, nothing else, and never shell text', () => {
    expect(nodeHost('{name}.example.net', {name: 'worker-1', internalIP: '10.1.0.7'})).toBe('worker-1.example.net')
    expect(nodeHost('k8s-{ip}', {name: 'worker-1', internalIP: '10.1.0.7'})).toBe('k8s-10.1.0.7')
    expect(checkHostTemplate('{name}')).toBe('{name}')
    expect(() => checkHostTemplate('{host}.x')).toThrow('unknown {host}')
    expect(() => checkHostTemplate('bastion')).toThrow('must contain {name} or {ip}')
    expect(() => checkHostTemplate('{name}.x; reboot')).toThrow('not a host name')
  })
})

describe('netctl collect with clashing source flags', () => {
  it('exits 2 with the reason in one line, before reading anything', async () => {
    for (const [args, reason] of [
      [['--lab', 'kw-none', '--inventory', 'x.yaml'], '--lab and --inventory name two different clusters: give one'],
      [
        ['--lab', 'kw-none', '--kubeconfig', '/nonexistent/config'],
        '--kubeconfig is for a Kubernetes cluster and cannot be used with --lab',
      ],
      [
        ['--kubeconfig', '/nonexistent/config', '--via', 'debug-pod', '--ssh-jump', 'bastion'],
        '--ssh-jump is for --via ssh; the nodes are reached --via debug-pod',
      ],
      [['--via', 'ssh', '--image', 'mirror/netshoot'], '--debug-image is for --via debug-pod, not --via ssh'],
    ] as const) {
      const r = await netctl(['collect', ...args])
      expect(r.code, r.stderr).toBe(ExitCode.USAGE)
      expect(r.stdout).toBe('')
      expect(r.stderr.split('\n')[0]).toBe(`netctl: ${reason}`)
    }
  })

  it('with nothing named and no kubeconfig anywhere, says what could be named', async () => {
    const r = await netctl(['collect'], {env: {HOME: '/nonexistent', KUBECONFIG: '', KUBERNETES_SERVICE_HOST: ''}})
    expect(r.code).toBe(ExitCode.USAGE)
    expect(r.stderr.split('\n')[0]).toMatch(
      /^netctl: no Kubernetes config: .*; or name a lab \(--lab NAME\) or an inventory file \(--inventory FILE\)$/,
    )
  })
})
