#!/usr/bin/env bash
# CI entry point: deploy this run's ephemeral stacks (`harness stack deploy --ephemeral`).
#
# The stack prefix is derived from the CI context (run id, attempt, PR or branch) unless
# STACK_NAME is set. In GitHub Actions the step outputs `stack-prefix` and `outputs-file`.
#   OUTPUTS_FILE     where cdk writes the outputs (default: cdk-outputs.json)
#   STACK_TTL_HOURS  expires-at = now + this; the reaper removes the stacks after it (default: 4)
#   STACK_NAME       explicit stack prefix (optional)
# Extra arguments go to `harness stack deploy` (e.g. --context visibility_timeout=8).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_harness.sh"

args=(stack deploy --ephemeral --outputs "${OUTPUTS_FILE:-cdk-outputs.json}" --ttl-hours "${STACK_TTL_HOURS:-4}")
if [[ -n "${STACK_NAME:-}" ]]; then
  args+=(--name "$STACK_NAME")
fi
exec "$HARNESS" "${args[@]}" "$@"
