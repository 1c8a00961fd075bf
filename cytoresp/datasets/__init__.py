"""Built-in datasets: the simulated cohort (baseline, or with on-treatment visits).

Examples
--------
>>> from cytoresp.datasets import simulate_cohort
>>> cohort = simulate_cohort(100, seed=0)
>>> list(cohort.truth.columns[:3])
['sample_id', 'p_response_ifnb', 'p_response_ga']
"""

from cytoresp.datasets.longitudinal import simulate_longitudinal
from cytoresp.datasets.simulator import SimulatedCohort, simulate_cohort

__all__ = ["SimulatedCohort", "simulate_cohort", "simulate_longitudinal"]
