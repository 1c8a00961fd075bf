"""Property tests: how the simulator writes numbers, and cohorts of any small size."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cytoresp.datasets import simulate_cohort
from cytoresp.datasets.simulator import ANALYTE_IDS, PLATFORMS, format_sig4
from cytoresp.errors import UsageError

positive = st.floats(min_value=1e-4, max_value=1e7, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.21449, "3.214"),
        (3.2146, "3.215"),
        (0.56, "0.5600"),
        (0.0123456, "0.01235"),
        (16.5, "16.50"),
        (2259.0, "2259"),
        (11543.2, "11540"),
        (9.99996, "10.00"),
        (999.96, "1000"),
        (1e-3, "0.001000"),
        (1234567.0, "1235000"),
    ],
)
def test_format_sig4_examples(value: float, text: str) -> None:
    assert format_sig4(np.array([value])).tolist() == [text]


@given(st.lists(positive, min_size=1, max_size=50))
@settings(max_examples=200, deadline=None)
def test_format_sig4_round_trips_within_half_a_unit(values: list[float]) -> None:
    x = np.array(values)
    texts = format_sig4(x)
    for v, s in zip(x, texts, strict=True):
        assert "e" not in s and "-" not in s
        parsed = float(s)
        unit = 10.0 ** (math.floor(math.log10(parsed)) - 3)  # last significant digit
        assert abs(parsed - v) <= 0.5 * unit * (1 + 1e-9) + 1e-15, (v, s)
        digits = s.replace(".", "").lstrip("0")
        if "." in s:
            assert len(digits) == 4, s
        else:
            assert len(digits) >= 4 and set(digits[4:]) <= {"0"}, s


@pytest.mark.parametrize("bad", [[0.0], [-1.0], [float("nan")], [float("inf")]])
def test_format_sig4_rejects_non_positive(bad: list[float]) -> None:
    with pytest.raises(UsageError, match="positive finite numbers only"):
        format_sig4(np.array(bad))


@given(
    n=st.integers(1, 60),
    seed=st.integers(0, 2**32),
    platform=st.sampled_from(PLATFORMS),
    assignment=st.sampled_from(["randomised", "confounded"]),
    missing_rate=st.floats(0.0, 0.5),
)
@settings(max_examples=25, deadline=None)
def test_any_small_cohort_is_well_formed(
    n: int, seed: int, platform: str, assignment: str, missing_rate: float
) -> None:
    c = simulate_cohort(
        n, seed, platform=platform, assignment=assignment, missing_rate=missing_rate
    )
    assert len(c.panel) == len(c.truth) == len(c.latent) == n
    for a in ANALYTE_IDS:
        s = c.panel[a]
        censored = s.str.match(r"^[<>]\d+(\.\d+)?$")
        numeric = pd.to_numeric(s.where(~censored & (s != "")), errors="raise")
        assert (numeric.dropna() > 0).all()
    chosen = np.where(
        c.panel["therapy"] == "ifnb", c.truth["responder_ifnb"], c.truth["responder_ga"]
    )
    assert (c.panel["responder"].to_numpy() == chosen).all()
    assert (
        c.truth[["p_response_ifnb", "p_response_ga"]]
        .apply(lambda p: p.between(0, 1))
        .all(axis=None)
    )


def test_object_fallback_writes_the_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # The path used when pandas keeps text as Python objects (pandas < 3).
    import cytoresp.datasets.simulator as sim

    arrow = simulate_cohort(300, seed=2, platform="luminex_standard", missing_rate=0.1).panel
    monkeypatch.setattr(sim, "_ARROW_STRINGS", False)
    plain = simulate_cohort(300, seed=2, platform="luminex_standard", missing_rate=0.1).panel
    for column in arrow.columns:
        assert arrow[column].astype(str).tolist() == plain[column].astype(str).tolist(), column
