"""DVC stages `activation_sparsity_train` / `activation_sparsity`: emergent ReLU activation sparsity (claim 3)."""

from claimbench.stage import main

if __name__ == "__main__":  # spawned worker processes re-import this file: they must not run it
    raise SystemExit(main("activation_sparsity"))
