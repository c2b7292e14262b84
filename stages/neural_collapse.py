"""DVC stages `neural_collapse_train` / `neural_collapse`: neural collapse across losses (claim 4)."""

from claimbench.stage import main

raise SystemExit(main("neural_collapse"))
