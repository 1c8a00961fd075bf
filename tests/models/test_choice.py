"""Best-versus-runner-up choice for models with heads other than IFN-β / GA (issue #13)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cytoresp.errors import UsageError
from cytoresp.models.choice import CHOICE_COLUMNS, best_vs_runner_up


def _null_world(k: int, n: int, shift: float, seed: int, B: int = 200, sd: float = 0.05):
    """Heads' estimates and bootstrap draws when therapy 0 is better by ``shift``.

    Each head's estimate is the truth plus noise of ``sd``; its draws scatter around the
    estimate with the same ``sd`` (what a bootstrap of that head gives).
    """
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.3, 0.6, n)
    ids = ["ifnb", "dmf", "natalizumab", "ocrelizumab"][:k]
    est = {t: truth + (shift if i == 0 else 0.0) + rng.normal(0, sd, n)
           for i, t in enumerate(ids)}
    draws = {t: est[t] + rng.normal(0, sd, (B, n)) for t in ids}
    proba = pd.DataFrame({f"p_response_{t}": est[t] for t in ids})
    return proba, draws


@pytest.mark.parametrize("k", [2, 3, 4])
def test_under_the_null_a_therapy_is_named_at_most_at_the_nominal_rate(k):
    """No therapy is better: naming one is a false positive. With a 90% interval the
    two-sided error is 10%; choosing the top two of k only narrows the gap tested."""
    proba, draws = _null_world(k, n=3000, shift=0.0, seed=k)
    out = best_vs_runner_up(proba, draws, level=0.90)
    rate = float((out["recommended_therapy"] != "either").mean())
    assert rate <= 0.10 + 3 * np.sqrt(0.1 * 0.9 / 3000)  # nominal + 3 MC standard errors


@pytest.mark.parametrize("k", [2, 3])
def test_a_clearly_better_therapy_is_named(k):
    proba, draws = _null_world(k, n=500, shift=0.4, seed=10 + k)
    out = best_vs_runner_up(proba, draws, level=0.90)
    assert (out["recommended_therapy"] == "ifnb").mean() > 0.95


def test_columns_and_fixed_margin_rule_without_draws():
    proba = pd.DataFrame({"p_response_dmf": [0.7, 0.5, np.nan],
                          "p_response_natalizumab": [0.6, 0.53, 0.4]})
    out = best_vs_runner_up(proba, margin=0.05)
    assert list(out.columns) == [*proba.columns, *CHOICE_COLUMNS]
    assert out["best_therapy"].tolist() == ["dmf", "natalizumab", "natalizumab"]
    assert out["recommended_therapy"].tolist() == ["dmf", "either", "either"]
    assert out["difference_lower"].isna().all()


@pytest.mark.parametrize(
    ("proba", "level", "message"),
    [
        (pd.DataFrame({"p_response_dmf": [0.5]}), 0.9, "at least two p_response_ columns"),
        (pd.DataFrame({"p_response_dmf": [0.5], "p_response_ga": [0.4]}), 1.0,
         "level must be in"),
    ],
)
def test_bad_input_is_refused(proba, level, message):
    with pytest.raises(UsageError, match=message):
        best_vs_runner_up(proba, level=level)
