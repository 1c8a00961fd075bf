"""benchmarks/policy.py's metrics, worked by hand (they produce issue 15's table)."""

import doctest
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def policy(load_benchmark):
    return load_benchmark("policy")


def test_policy_metrics_by_hand(policy):
    rec = pd.DataFrame({
        "p_response_ifnb": [0.8, 0.3, 0.55], "p_response_ga": [0.4, 0.6, 0.5],
        "leading_therapy": ["ifnb", "ga", "ifnb"], "runner_up": ["ga", "ifnb", "ga"],
        "difference": [0.3, 0.2, 0.05], "difference_lower": [0.1, 0.05, -0.1],
        "difference_upper": [0.5, 0.35, 0.2], "recommended_therapy": ["ifnb", "ga", "either"],
    })
    truth = pd.DataFrame({"p_response_ifnb": [0.9, 0.2, 0.5], "p_response_ga": [0.4, 0.6, 0.6]})
    ev = policy.evaluate_policy(rec, truth)
    # oracle: 0.9, 0.6, 0.6; following the table: 0.9, 0.6 and the leader ifnb's 0.5;
    # best single therapy (tie, the first): mean 1.6 / 3
    assert ev.rate_oracle == pytest.approx(0.7)
    assert ev.rate_recommendation == pytest.approx(2.0 / 3)
    assert ev.rate_best_single == pytest.approx(1.6 / 3)
    assert ev.gain_captured == pytest.approx((2.0 / 3 - 1.6 / 3) / (0.7 - 1.6 / 3))
    assert ev.confident_share == pytest.approx(2 / 3)
    assert ev.agreement_confident == 1.0  # both confident calls name the better therapy
    # true leader - runner-up: 0.5 in [0.1, 0.5], 0.4 not in [0.05, 0.35], -0.1 in [-0.1, 0.2]
    assert ev.interval_coverage == pytest.approx(2 / 3)


def test_policy_module_examples_run(policy):
    failures, tried = doctest.testmod(policy, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_raw_rows_append_resume_and_combine(policy, tmp_path):
    """--out appends row by row and knows which cells are done; --from-csv keeps one row per
    (scenario, size, seed), the last file winning, in scenario order of first appearance."""
    from cytoresp.errors import UsageError

    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    assert policy.done_cells(first) == set()
    for seed in (0, 1):
        policy.append_row(first, {"scenario": "none", "size": 100, "seed": seed, "x": seed})
    policy.append_row(second, {"scenario": "large", "size": 300, "seed": 0, "x": 5})
    policy.append_row(second, {"scenario": "none", "size": 100, "seed": 1, "x": 9})
    assert policy.done_cells(first) == {("none", 100, 0), ("none", 100, 1)}
    rows = policy.load_rows([first, second])
    assert rows[["scenario", "seed", "x"]].values.tolist() == [
        ["none", 0, 0], ["none", 1, 9], ["large", 0, 5]
    ]
    with pytest.raises(UsageError, match="other columns"):
        policy.append_row(first, {"scenario": "none", "size": 100, "seed": 2, "y": 1})
