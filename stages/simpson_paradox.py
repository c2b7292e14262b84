"""DVC stages `simpson_paradox_train` / `simpson_paradox`: claim 2, Simpson's paradox of spectral metrics."""

from claimbench.stage import main

if __name__ == "__main__":  # spawned worker processes re-import this file: they must not run it
    raise SystemExit(main("simpson_paradox"))
