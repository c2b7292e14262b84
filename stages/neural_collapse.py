"""DVC stages `neural_collapse_train` / `neural_collapse`: neural collapse across losses (claim 4)."""

from claimbench.stage import main

if __name__ == "__main__":  # spawned worker processes re-import this file: they must not run it
    raise SystemExit(main("neural_collapse"))
