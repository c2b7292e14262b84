"""DVC stages `el2n_pruning_train` / `el2n_pruning`: EL2N data pruning (Paul et al. 2021)."""

from claimbench.stage import main

raise SystemExit(main("el2n_pruning"))
