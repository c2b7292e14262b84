"""DVC stages `heavy_tail_phases_train` / `heavy_tail_phases`: MiniAlexNet batch sizes, spectral analysis."""

from claimbench.stage import main

if __name__ == "__main__":  # spawned worker processes re-import this file: they must not run it
    raise SystemExit(main("heavy_tail_phases"))
