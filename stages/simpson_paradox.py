"""DVC stages `simpson_paradox_train` / `simpson_paradox`: claim 2, Simpson's paradox of spectral metrics."""

from claimbench.stage import main

raise SystemExit(main("simpson_paradox"))
