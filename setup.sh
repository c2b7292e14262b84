#!/usr/bin/env bash
# One-command setup: install claimbench (+ dev tools and the optional Ray executor) into the current Python, then locate the
# default datasets (../shared/data, /usr/share/datasets, else download them once while online). Without
# them (offline, no ../shared/data) setup still completes with a warning saying how to get them; the
# tests that need the data are then skipped.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --quiet --disable-pip-version-check -e ".[dev,ray]"
python -m claimbench.data fetch --allow-missing
