#!/usr/bin/env bash
# CI entry point: destroy this run's ephemeral stacks and wait until they are gone
# (`harness stack destroy NAME`). Safe to run when nothing was deployed.
#
# NAME is the first argument, else STACK_NAME, else derived from the CI context (the same
# run attempt derives the same name as ci_deploy.sh did). Outside CI a name is required.
# Extra arguments go to `harness stack destroy` (e.g. --timeout 2400).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_harness.sh"

name="${1:-${STACK_NAME:-}}"
if [[ $# -gt 0 ]]; then
  shift
fi
if [[ -z "$name" ]]; then
  if [[ -z "${GITHUB_RUN_ID:-}" ]]; then
    echo "ci_teardown.sh: give the stack prefix (argument or STACK_NAME); outside CI it cannot be derived" >&2
    exit 2
  fi
  name="$("$HARNESS" stack name)"
fi
exec "$HARNESS" stack destroy "$name" "$@"
