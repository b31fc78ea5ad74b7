#!/usr/bin/env bash
# Regenerates the hashed lock files under requirements/ from pyproject.toml with pip-tools
# (run after changing a dependency; CI fails until the locks match, see lava/deploy/locks.py).
# Needs the network (PyPI); takes a few minutes on 2 cores.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
export CUSTOM_COMPILE_COMMAND="scripts/lock.sh"
compile() {  # output, then pip-compile arguments
  local out="$1"; shift
  pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
    --no-emit-find-links --no-emit-trusted-host --resolver=backtracking \
    --output-file "$out" "$@" pyproject.toml
  python -m lava.deploy.locks "$out"
}
# the production image can trace (docs/tracing.md: off unless OTEL_* asks)
compile requirements/production.lock --extra tracing
# the control service's image target: its API server and OIDC tokens
compile requirements/control.lock --extra tracing --extra control
# the local target runs every component (control too) and the CLI's dataset report
compile requirements/local.lock --extra local --extra control --extra report
compile requirements/build.lock --only-build-deps --all-build-deps
