#!/usr/bin/env bash
# One-command setup: install claimbench (+ dev tools and the optional Ray executor) into the current Python at
# exactly the versions of requirements.lock (every dependency, transitively; made on Python 3.11 / Linux by
# `python -m claimbench.provenance lock`), then locate and checksum the default datasets (../shared/data,
# /usr/share/datasets, else download them once while online). Without them (offline, no ../shared/data) setup
# still completes with a warning saying how to get them; the tests that need the data are then skipped.
# The code also runs without the lock on the GPU box's stack (Python 3.12, torch 2.11 / torchvision 0.26, no
# dvc; PYTHONPATH=src); provenance records whichever versions ran.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev,ray]"
python -m claimbench.data fetch --allow-missing
