"""DVC stages `activation_sparsity_train` / `activation_sparsity`: emergent ReLU activation sparsity (claim 3)."""

from claimbench.stage import main

raise SystemExit(main("activation_sparsity"))
