#!/usr/bin/env bash
# Builds the connectors console: installs the pinned npm packages when node_modules is missing
# or was installed from another package-lock.json, generates the TypeScript client from the
# contract (src/gen/), type-checks, and bundles the page into dist/ (index.html, console.css
# and one minified console.js). The same input gives byte-identical src/gen and dist,
# both checked in, so building the server never needs npm.
#
#   console/build.sh           build
#   console/build.sh --check   build, then fail if src/gen or dist differ from what git holds
#
# buf is $BUF_BIN (scripts/tools.sh sets it), else the one scripts/tools.sh installs into
# .tools/, else buf on PATH.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$here"

check=false
case "${1:-}" in
    "") ;;
    --check) check=true ;;
    *) echo "usage: console/build.sh [--check]" >&2; exit 2 ;;
esac

# npm ci when node_modules does not match package-lock.json (a stamp holds the lock's hash:
# mtimes are not reliable after a checkout).
lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp=node_modules/.console-lock-sha256
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_hash" ]]; then
    npm ci --no-audit --no-fund --no-update-notifier >&2
    echo "$lock_hash" > "$stamp"
fi

buf="${BUF_BIN:-}"
if [[ -z "$buf" ]]; then
    for candidate in \
        "$root/.tools/node/node_modules/@bufbuild/buf-linux-x64/bin/buf" \
        "$root/.tools/node/node_modules/@bufbuild/buf-linux-aarch64/bin/buf" \
        "$(command -v buf || true)"; do
        if [[ -n "$candidate" && -x "$candidate" ]]; then buf="$candidate"; break; fi
    done
fi
[[ -n "$buf" ]] || { echo "console/build.sh: buf not found (run scripts/tools.sh)" >&2; exit 1; }

# The client, from ../proto (the API and the google.rpc error details).
"$buf" generate

# Type check (tsc only checks; esbuild bundles).
node_modules/.bin/tsc --noEmit -p tsconfig.json

# The bundle: one minified file, no source map, no legal-comments file, nothing fetched at run
# time. The CSP the server sends allows scripts and styles from the page's own origin only.
rm -rf dist
mkdir -p dist
node_modules/.bin/esbuild src/main.ts \
    --bundle --minify --format=iife --target=es2020 --platform=browser \
    --legal-comments=none --charset=utf8 --log-level=warning \
    --outfile=dist/console.js
cp static/index.html static/console.css dist/

if $check; then
    # Compared with git's index: a changed file (git diff) or a new one git does not know.
    cd "$root"
    paths=(console/src/gen console/dist)
    changed="$(git diff --name-only -- "${paths[@]}"; git ls-files --others --exclude-standard -- "${paths[@]}")"
    if [[ -n "$changed" ]]; then
        echo "console/build.sh --check: the generated client or the bundle differ from what is checked in:" >&2
        echo "$changed" >&2
        echo "run console/build.sh and commit console/src/gen and console/dist" >&2
        exit 1
    fi
fi
