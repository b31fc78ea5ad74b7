#!/usr/bin/env bash
# The test command (README): installs what is missing, lints, type-checks and runs every test.
# Tests start their own moto server and use the machine's RabbitMQ. Extra args go to pytest.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
# The dashboard's browser test drives Debian's chromium (no browser download at test time).
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium (apt-get; the dashboard's browser test)"
  source "$(dirname "$0")/apt.sh"
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends chromium >/dev/null
fi
echo "== ruff"; ruff check .
echo "== mypy --strict"; mypy shared services emulators lava devstack tests bench
echo "== docs (mkdocs build --strict; generated pages must be fresh)"
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
echo "== Label Studio (own venv, once per machine)"; bash "$(dirname "$0")/labelstudio.sh"
# Two workers (pytest-xdist): most tests wait on processes, the broker and moto rather than
# compute, and every test has its own namespace and ports, so two run side by side on two
# cores. LAVA_TEST_WORKERS=0 runs them in this process (for pdb, or a single test).
echo "== pytest"; python -m pytest -n "${LAVA_TEST_WORKERS:-2}" "$@"
