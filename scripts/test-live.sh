#!/usr/bin/env bash
# The live tests (test/live/): the worker, calls over WebRTC and the telephony setup against a
# real LiveKit server and Redis, inside a private network namespace (scripts/netns.sh).
#
#   npm run test:live [-- vitest args]     (also the last step of `npm test`)
#
# Without the stack, the speech engines or root, they are skipped with one line naming the
# install command; with CI=true a skip is a failure (.ci/run installs everything).
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  if [ "${CI:-}" = "true" ]; then
    echo "live tests cannot run: $1 (CI=true: a skip is a failure)" >&2
    exit 1
  fi
  echo "live tests skipped: $1"
  exit 0
}

missing=$(node --import tsx src/cli/stack.ts --check) || skip "$missing"
[ "$(id -u)" = "0" ] || skip "they need root for a private network namespace: sudo npm run test:live"

# The worker runs as `npm start` runs it: compiled JavaScript.
npm run --silent build
exec scripts/netns.sh npx vitest run --config vitest.live.config.ts "$@"
