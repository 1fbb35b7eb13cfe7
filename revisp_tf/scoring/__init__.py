"""Scoring: the challenge metric, the one scorer (shared by `eval` and training validation), baselines, `revisp-tf eval`."""
