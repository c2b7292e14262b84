"""DVC stage `report`: results/claims.md from the claim cards and every committed metrics.json."""

from claimbench.report import main

if __name__ == "__main__":  # spawned worker processes re-import this file: they must not run it
    raise SystemExit(main())
