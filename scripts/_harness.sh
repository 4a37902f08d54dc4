# Sourced by the ci_*.sh entry points: find the `harness` command.
# $HARNESS wins; else the repository's .venv (what `make install` creates); else PATH.
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${HARNESS:-}" ]]; then
  if [[ -x "$_root/.venv/bin/harness" ]]; then
    HARNESS="$_root/.venv/bin/harness"
  else
    HARNESS="harness"
  fi
fi
