#!/usr/bin/env bash
# Installs mem0's TypeScript library (mem0ai 3.3.1, `mem0ai/oss`) in this folder, apart from Engram,
# and checks that it loads. mem0's default stores need the native better-sqlite3 addon, built for
# the Node.js that runs mem0: the machine's own `node` (not the Node 22 of Engram's devDependencies),
# or the one named by MEM0_NODE. better-sqlite3 12 supports Node 20 and 22 (13 needs 22).
#
# npm 11 runs no install scripts of dependencies unless package.json allows them: `allowScripts`
# there allows better-sqlite3's (prebuild-install, falling back to a node-gyp build).
set -euo pipefail
cd "$(dirname "$0")"

if [[ -n "${MEM0_NODE:-}" ]]; then
  node_bin="$MEM0_NODE"
else
  # Drop every node_modules/.bin from PATH: npm scripts put the project's Node 22 first.
  clean_path="$(printf '%s' "$PATH" | tr ':' '\n' | grep -v 'node_modules/\.bin' | paste -sd: -)"
  node_bin="$(PATH="$clean_path" command -v node)"
fi
node_dir="$(dirname "$node_bin")"
echo "mem0 peer: installing with $node_bin ($("$node_bin" --version))"

# npm itself runs on the chosen node, so node-gyp builds for its ABI.
PATH="$node_dir:$PATH" npm ci --no-audit --no-fund --loglevel=error

"$node_bin" --input-type=module -e "
  const { default: Database } = await import('better-sqlite3');
  new Database(':memory:').prepare('select 1').get();
  const mem0 = await import('mem0ai/oss');
  if (typeof mem0.Memory !== 'function') throw new Error('mem0ai/oss has no Memory export');
"
printf '%s\n' "$node_bin" > node_modules/.engram-peer-node
echo "mem0 peer: ready (mem0ai $("$node_bin" -p "require('./node_modules/mem0ai/package.json').version"), better-sqlite3 $("$node_bin" -p "require('./node_modules/better-sqlite3/package.json').version"))"
