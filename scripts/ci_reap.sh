#!/usr/bin/env bash
# CI entry point (scheduled): delete ephemeral stacks past their expiry (`harness stack reap`).
#
# Only stacks tagged ephemeral=true, without termination protection and not in progress
# are touched; the decision table is printed. The exit code is 1 if any delete failed.
#   REAP_OLDER_THAN  also delete ephemeral stacks created longer ago than this (default: 24h)
# Extra arguments go to `harness stack reap` (e.g. --dry-run).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_harness.sh"

exec "$HARNESS" stack reap --older-than "${REAP_OLDER_THAN:-24h}" "$@"
