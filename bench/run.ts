/** `npm run bench`: every benchmark, printed as markdown for the README. */
import {benchLabUp} from './lab-up.js'

const sections: string[] = []
sections.push(await benchLabUp())
console.log(`## Benchmarks (${new Date().toISOString().slice(0, 10)}, ${(await import('node:os')).cpus().length} cores)\n`)
console.log(sections.filter(Boolean).join('\n'))
