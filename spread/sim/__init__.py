"""Deterministic network simulator and EVS invariant checkers for the ring engine.

`python -m spread.sim --daemons 5 --seeds 1000`; see docs/simulator.md. Entry points for code:
`spread.sim.runner.run_seed` / `run_seeds` and `SimParams`.
"""
