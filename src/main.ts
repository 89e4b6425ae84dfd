/**
 * What bin/run.js starts the built CLI with: oclif's `execute`, from the bundle (scripts/bundle.ts),
 * so that the commands and oclif itself share one copy of @oclif/core.
 */
export {execute} from '@oclif/core'
