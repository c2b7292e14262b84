"""DVC stage `report`: results/claims.md from the claim cards and every committed metrics.json."""

from claimbench.report import main

raise SystemExit(main())
