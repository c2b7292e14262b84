"""Pilot tools for the next card version (issue 24): summaries of pilot run folders, EL2N fit checks and
pilot power. Pilots are never judging runs; see docs/protocols-v5-proposal.md.

    python -m claimbench.pilot.summary | .el2n_fit | .power  (--help for each)
"""
