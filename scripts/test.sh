#!/usr/bin/env bash
# The test command (README): installs what is missing, lints, type-checks and runs every test.
# Tests start their own moto server and use the machine's RabbitMQ. Extra args go to pytest.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
echo "== ruff"; ruff check .
echo "== mypy --strict"; mypy shared services emulators lava tests bench
echo "== pytest"; python -m pytest "$@"
