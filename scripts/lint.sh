#!/usr/bin/env bash
# npm run lint: ESLint and Prettier's check over the whole tree. The lint tools have a
# package of their own (tools/lint: see its eslint.config.js for why), installed on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=tools/lint/node_modules/.bin
if [ ! -x "$tools/eslint" ] || [ ! -x "$tools/prettier" ]; then
  npm ci --prefix tools/lint --no-audit --no-fund >/dev/null
fi
# the code; prose and data keep the shape their authors gave them
code=('**/*.ts' '**/*.tsx' '**/*.js' '**/*.mjs')
if [ "${1:-}" = "--fix" ]; then
  # ESLint first: its fixes (import order, unused directives) are then laid out by Prettier
  "$tools/eslint" --fix .
  "$tools/prettier" --log-level warn --write "${code[@]}"
else
  "$tools/eslint" .
  "$tools/prettier" --log-level warn --check "${code[@]}"
fi
