"""DVC stages `el2n_pruning_train` / `el2n_pruning`: EL2N data pruning (Paul et al. 2021)."""

from claimbench.stage import main

if __name__ == "__main__":  # spawned worker processes re-import this file: they must not run it
    raise SystemExit(main("el2n_pruning"))
