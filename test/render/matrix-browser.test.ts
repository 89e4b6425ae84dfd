/**
 * The matrix's picture as people see it: `netctl matrix -o svg` and `-o html`
 * rendered by a real headless Chromium, the screenshot read back pixel by
 * pixel. Each square is sampled where the SVG's own geometry puts it: a
 * delivered one is green, a failing one has its disposition's colour with the
 * white cross through its middle, a partial Service square the failing colour
 * above a green band. Chromium comes from Debian (scripts/install-deps.sh);
 * without it the test is skipped with a printed reason, except in CI where it must run.
 */
import {existsSync} from 'node:fs'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {MARKS} from '../../src/render/matrix.js'
import {spawnCollect} from '../../src/util/exec.js'
import {netctl} from '../helpers/cli.js'
import {snapshotFixture} from '../helpers/fixtures.js'
import {colourDistance, decodePng, pixelAt, type Png} from '../helpers/png.js'

const CHROMIUM = process.env.NETCTL_CHROMIUM ?? '/usr/bin/chromium'

function skipReason(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined
  if (process.env.CI)
    throw new Error(
      `the matrix browser test must run in CI: no ${CHROMIUM} (scripts/install-deps.sh installs chromium)`,
    )
  return `no ${CHROMIUM} (apt-get install chromium, or scripts/install-deps.sh)`
}

const reason = skipReason()
if (reason) console.log(`skipping the matrix browser test: ${reason}`)
const describeBrowser = reason ? describe.skip : describe

/**
 * One screenshot with Chromium's own CLI, nothing else of the browser's
 * running: no network (background networking, component updates, sync and
 * QUIC off: this machine has no way out), a throwaway profile, one device
 * pixel per CSS pixel so the SVG's coordinates are the PNG's.
 */
async function screenshot(url: string, width: number, height: number, dir: string): Promise<Png> {
  const out = path.join(dir, `shot-${width}x${height}-${Date.now()}.png`)
  const profile = await mkdtemp(path.join(dir, 'profile-'))
  const r = await spawnCollect(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      '--force-device-scale-factor=1',
      '--hide-scrollbars',
      `--screenshot=${out}`,
      `--window-size=${width},${height}`,
      url,
    ],
    // its own process group, killed whole on timeout (the renderer and zygote with it)
    {timeoutMs: 90_000, group: true},
  )
  expect(r.timedOut, r.stderr).toBeUndefined()
  expect(existsSync(out), `chromium wrote no screenshot (exit ${r.code}): ${r.stderr}`).toBe(true)
  return decodePng(await readFile(out))
}

interface Square {
  cls: string
  key: string
  disposition: string
  x: number
  y: number
  size: number
}

/** Every square of the SVG, where its own markup puts it. */
function squares(svg: string): Square[] {
  return [
    ...svg.matchAll(
      /<g class="([^"]+)" data-src="([^"]+)" data-(?:dst|service)="([^"]+)" data-disposition="([A-Z_]+)"[^>]*>\n<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"/g,
    ),
  ].map((m) => ({
    cls: m[1]!,
    key: `${m[2]} → ${m[3]}`,
    disposition: m[4]!,
    x: Number(m[5]),
    y: Number(m[6]),
    size: Number(m[7]),
  }))
}

const near = (png: Png, x: number, y: number, colour: string): boolean =>
  colourDistance(pixelAt(png, x, y), colour) <= 8

describeBrowser('the matrix picture in headless Chromium', () => {
  let dir = ''
  let svg = ''
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'netctl-matrix-browser-'))
    // the services lab, node1's FDB entry for node3 deleted: two failing pairs, partial and rejected Service cells
    const snap = snapshotFixture('flannel-vxlan-services-iptables-lab')
    const n3 = snap.nodes.find((n) => n.name === 'node3')!
    const s1 = snap.nodeStates.node1!
    s1.fdb = s1.fdb.filter((e) => !(e.dev === 'flannel.1' && e.dst === n3.internalIP))
    await writeFile(path.join(dir, 'snap.json'), JSON.stringify(snap))
    const r = await netctl(['matrix', '--snapshot', path.join(dir, 'snap.json'), '--services', '-o', 'svg'])
    expect(r.code, r.stderr).toBe(1)
    svg = r.stdout
    await writeFile(path.join(dir, 'matrix.svg'), svg)
  })
  afterAll(async () => {
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('-o svg: every square where the SVG puts it, green when delivered, a failing one in its colour and crossed, a partial one over a green band', async () => {
    const [, w, h] = /^<svg [^>]*width="(\d+)" height="(\d+)"/.exec(svg)!
    const png = await screenshot(pathToFileURL(path.join(dir, 'matrix.svg')).href, Number(w), Number(h), dir)
    expect([png.width, png.height]).toEqual([Number(w), Number(h)])
    const all = squares(svg)
    expect(all).toHaveLength(6 + 24)
    const failing = all.filter((s) => s.cls.includes('failed'))
    expect(failing.map((s) => s.key)).toEqual([
      'default/pod-node1-1 → default/pod-node3-1',
      'default/pod-node1-1 → default/no-endpoints:80/TCP',
      'default/pod-node1-1 → default/sticky:80/TCP',
      'default/pod-node1-1 → default/web:80/TCP',
      'default/pod-node2-1 → default/no-endpoints:80/TCP',
      'default/pod-node3-1 → default/pod-node1-1',
      'default/pod-node3-1 → default/no-endpoints:80/TCP',
      'default/pod-node3-1 → default/node-local:80/TCP',
      'default/pod-node3-1 → default/sticky:80/TCP',
      'default/pod-node3-1 → default/web:80/TCP',
      'default/pod-node3-1 → default/web-local:80/TCP',
      'default/pod-node3-1 → default/zonal:80/TCP',
      'default/pod-node3-1 → kube-system/kube-dns:53/UDP',
      'default/pod-node3-1 → kube-system/kube-dns:53/TCP',
    ])
    const green = MARKS.DELIVERED.color
    for (const s of all) {
      const colour = MARKS[s.disposition as keyof typeof MARKS].color
      const [cx, cy] = [s.x + s.size / 2, s.y + s.size / 2]
      // the top middle: clear of the cross's arms and of the band
      const top = pixelAt(png, cx, s.y + 3)
      if (!s.cls.includes('failed')) {
        expect(near(png, cx, cy, green) && near(png, cx, s.y + 3, green), `${s.key}: ${top}, want ${green}`).toBe(true)
        continue
      }
      expect(near(png, cx, s.y + 3, colour), `${s.key} (${s.disposition}): ${top}, want ${colour}`).toBe(true)
      if (s.cls.includes('partial')) {
        // the band of reached endpoints at the bottom, a single stroke (the middle is not white)
        expect(near(png, cx, s.y + s.size - 4, green), `${s.key}: bottom ${pixelAt(png, cx, s.y + s.size - 4)}`).toBe(
          true,
        )
      } else {
        // the cross: white through the middle
        expect(near(png, cx, cy, '#ffffff'), `${s.key}: middle ${pixelAt(png, cx, cy)}, want the white cross`).toBe(
          true,
        )
      }
    }
    // the diagonal is left blank: the page's white
    const d = all.find((s) => s.key === 'default/pod-node1-1 → default/pod-node2-1')!
    expect(near(png, d.x - d.size / 2, d.y + d.size / 2, '#ffffff')).toBe(true)
  })

  it('-o html: the page renders, with the heat map in it (each disposition colour over about its squares) and the causes below', async () => {
    const html = await netctl(['matrix', '--snapshot', path.join(dir, 'snap.json'), '--services', '-o', 'html'])
    await writeFile(path.join(dir, 'matrix.html'), html.stdout)
    const png = await screenshot(pathToFileURL(path.join(dir, 'matrix.html')).href, 900, 1000, dir)
    const count = (colour: string): number => {
      const [r, g, b] = [1, 3, 5].map((k) => parseInt(colour.slice(k, k + 2), 16))
      let n = 0
      for (let i = 0; i < png.rgba.length; i += 4) {
        const d = Math.max(
          Math.abs(png.rgba[i]! - r!),
          Math.abs(png.rgba[i + 1]! - g!),
          Math.abs(png.rgba[i + 2]! - b!),
        )
        if (d <= 8) n++
      }
      return n
    }
    const all = squares(svg)
    const area = (d: string): number => all.filter((s) => s.disposition === d).length * (all[0]!.size - 1) ** 2
    // the legend adds a swatch each; the crosses and bands take some away
    for (const d of ['FDB_MISS', 'DENIED'] as const) {
      const n = count(MARKS[d].color)
      expect(n, d).toBeGreaterThan(area(d) * 0.25)
      expect(n, d).toBeLessThan(area(d) * 1.2 + 400)
    }
    expect(count(MARKS.DELIVERED.color)).toBeGreaterThan(area('DELIVERED') * 0.8)
    // text drawn: many dark pixels (the headings and the causes)
    expect(count('#000000')).toBeGreaterThan(1000)
  })
})
