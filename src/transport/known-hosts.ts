import {createHash, createHmac, randomBytes, timingSafeEqual} from 'node:crypto'
import {existsSync} from 'node:fs'
import {appendFile, mkdir, readFile} from 'node:fs/promises'
import path from 'node:path'

/**
 * OpenSSH known_hosts files (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"):
 *   [@marker] patterns keytype base64-key [comment]
 * where patterns is a comma list of host globs (`*`, `?`, `!negation`),
 * `[host]:port` for a port other than 22, or one hashed name `|1|salt|hmac`.
 * Parsing and matching are pure; loading and appending are the only I/O.
 */
export interface KnownHostsEntry {
  file: string
  /** 1-based line number, for messages that point at the line to remove */
  line: number
  marker?: 'cert-authority' | 'revoked'
  /** the raw hostnames field */
  hosts: string
  keyType: string
  /** the public key blob (SSH wire format) */
  key: Buffer
}

export function parseKnownHosts(text: string, file: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = []
  const lines = text.split('\n')
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const fields = line.split(/\s+/)
    let marker: KnownHostsEntry['marker']
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift()!
      if (m === '@cert-authority') marker = 'cert-authority'
      else if (m === '@revoked') marker = 'revoked'
      else continue // an unknown marker: OpenSSH skips the line too
    }
    const [hosts, keyType, b64] = fields
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) continue
    const key = Buffer.from(b64, 'base64')
    // the blob names its own type; a line whose two disagree, or a cut-off blob, is corrupt (OpenSSH skips it too)
    if (blobKeyType(key) !== keyType || !wellFormedBlob(key)) continue
    entries.push({file, line: i + 1, ...(marker ? {marker} : {}), hosts, keyType, key})
  }
  return entries
}

/** The key type written at the start of an SSH public key blob (string length + name). */
export function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined
  const n = blob.readUInt32BE(0)
  if (n === 0 || n > 64 || blob.length < 4 + n) return undefined
  return blob.subarray(4, 4 + n).toString('latin1')
}

/** A public key blob is a run of SSH strings (uint32 length + bytes) that fills it exactly: the type and at least one key part. */
export function wellFormedBlob(blob: Buffer): boolean {
  const parts: Buffer[] = []
  let off = 0
  while (off < blob.length) {
    if (off + 4 > blob.length) return false
    const n = blob.readUInt32BE(off)
    if (off + 4 + n > blob.length) return false
    parts.push(blob.subarray(off + 4, off + 4 + n))
    off += 4 + n
  }
  if (parts.length < 2) return false
  return parts[0]!.toString('latin1') !== 'ssh-ed25519' || (parts.length === 2 && parts[1]!.length === 32)
}

/** `SHA256:<base64 without padding>` exactly as `ssh-keygen -l` and ssh print it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`
}

/** The name a host is recorded under: `host`, or `[host]:port` when the port is not 22. Lower case, as OpenSSH looks it up. */
export function knownHostsName(host: string, port = 22): string {
  const h = host.toLowerCase()
  return port === 22 ? h : `[${h}]:${port}`
}

/** OpenSSH wildcard match: `*` any run, `?` one character, case-insensitive. */
export function globMatch(pattern: string, name: string): boolean {
  const body = pattern
    .toLowerCase()
    .replace(/[.+^$()|{}[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
  return new RegExp(`^${body}$`, 's').test(name.toLowerCase())
}

function hashedMatch(field: string, name: string): boolean {
  const parts = field.split('|')
  // |1|salt|hash splits into ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1') return false
  const salt = Buffer.from(parts[2]!, 'base64')
  const want = Buffer.from(parts[3]!, 'base64')
  const got = createHmac('sha1', salt).update(name).digest()
  return want.length === got.length && timingSafeEqual(want, got)
}

/**
 * Does the hostnames field of a line name `name` (already in `[host]:port`
 * form when needed)? A matching negated pattern vetoes the whole line.
 */
export function hostsFieldMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|')) return hashedMatch(hosts, name)
  let matched = false
  for (const pattern of hosts.split(',')) {
    if (pattern === '') continue
    if (pattern.startsWith('!')) {
      if (globMatch(pattern.slice(1), name)) return false
    } else if (globMatch(pattern, name)) {
      matched = true
    }
  }
  return matched
}

/** RSA keys sign with rsa-sha2-*; every ECDSA curve is one family, as OpenSSH compares them. */
export function keyFamily(keyType: string): string {
  return keyType.startsWith('ecdsa-sha2-') ? 'ecdsa' : keyType
}

export type HostKeyVerdict =
  | {status: 'ok'; entry: KnownHostsEntry}
  /** a key of the same family is recorded for the host, and it is another key */
  | {status: 'changed'; entry: KnownHostsEntry}
  /** the key is listed under @revoked */
  | {status: 'revoked'; entry: KnownHostsEntry}
  /** nothing recorded for this key type; otherTypes lists the types that are */
  | {status: 'unknown'; otherTypes: string[]}

/**
 * Judge the key a host presented. @cert-authority lines describe CAs for
 * host certificates, which this client does not use: they neither vouch for
 * nor conflict with a plain key. A revoked key is refused whatever the line's
 * host patterns say: the marker means "never accept this key".
 */
export function checkHostKey(entries: readonly KnownHostsEntry[], name: string, key: Buffer): HostKeyVerdict {
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(key))
  if (revoked) return {status: 'revoked', entry: revoked}
  const type = blobKeyType(key) ?? ''
  const forHost = entries.filter((e) => e.marker === undefined && hostsFieldMatches(e.hosts, name))
  const ok = forHost.find((e) => e.key.equals(key))
  if (ok) return {status: 'ok', entry: ok}
  const changed = forHost.find((e) => keyFamily(e.keyType) === keyFamily(type))
  if (changed) return {status: 'changed', entry: changed}
  return {status: 'unknown', otherTypes: [...new Set(forHost.map((e) => e.keyType))]}
}

/** Key types recorded for a host, so the handshake can ask for one of them first (as OpenSSH does). */
export function knownKeyTypes(entries: readonly KnownHostsEntry[], name: string): string[] {
  return [
    ...new Set(entries.filter((e) => e.marker === undefined && hostsFieldMatches(e.hosts, name)).map((e) => e.keyType)),
  ]
}

/** One known_hosts line for `names`; hashed (HashKnownHosts yes) names are one `|1|salt|hmac` each. */
export function knownHostsLine(names: readonly string[], key: Buffer, hash = false, salt?: Buffer): string[] {
  const type = blobKeyType(key)
  if (!type) throw new Error('not an SSH public key blob')
  const b64 = key.toString('base64')
  if (!hash) return [`${names.join(',')} ${type} ${b64}`]
  return names.map((n) => {
    const s = salt ?? randomBytes(20)
    return `|1|${s.toString('base64')}|${createHmac('sha1', s).update(n).digest('base64')} ${type} ${b64}`
  })
}

/** Read every file that exists; a missing file is an empty one (as for ssh). */
export async function loadKnownHosts(files: readonly string[]): Promise<KnownHostsEntry[]> {
  const all: KnownHostsEntry[] = []
  for (const file of files) {
    if (!existsSync(file)) continue
    all.push(...parseKnownHosts(await readFile(file, 'utf8'), file))
  }
  return all
}

/** Append lines, creating the file (0600) and its directory (0700) like ssh does. */
export async function appendKnownHosts(file: string, lines: readonly string[]): Promise<void> {
  await mkdir(path.dirname(file), {recursive: true, mode: 0o700})
  let prefix = ''
  if (existsSync(file)) {
    const text = await readFile(file, 'utf8')
    if (text !== '' && !text.endsWith('\n')) prefix = '\n'
  }
  await appendFile(file, prefix + lines.map((l) => `${l}\n`).join(''), {mode: 0o600})
}
