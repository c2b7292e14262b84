"""DVC stages `heavy_tail_phases_train` / `heavy_tail_phases`: MiniAlexNet batch sizes, spectral analysis."""

from claimbench.stage import main

raise SystemExit(main("heavy_tail_phases"))
