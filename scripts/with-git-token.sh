#!/usr/bin/env bash
# Runs one command with $GIT_TOKEN as git's credentials for github.com, passed through
# git's environment (GIT_CONFIG_*), never written to .git/config: checkouts keep
# persist-credentials: false, so tests and load tests run without a write token.
set -euo pipefail
if [[ -n "${GIT_TOKEN:-}" ]]; then
  basic="$(printf 'x-access-token:%s' "$GIT_TOKEN" | base64 -w0)"
  echo "::add-mask::$basic"
  export GIT_CONFIG_COUNT=1
  export GIT_CONFIG_KEY_0="http.https://github.com/.extraheader"
  export GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $basic"
fi
unset GIT_TOKEN
exec "$@"
