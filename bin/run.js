#!/usr/bin/env node
import {execute} from '@oclif/core'

// `netctl --version` is `netctl version`, which names the snapshot schema too.
const argv = process.argv.slice(2)
await execute({dir: import.meta.url, args: argv[0] === '--version' ? ['version', ...argv.slice(1)] : argv})
