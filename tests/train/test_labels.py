"""Training labels derived from follow-up columns (--label-from)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cytoresp.errors import InputError
from cytoresp.train.labels import read_training_panel


@pytest.fixture
def follow_up_table(cohort):
    table = cohort.panel.drop(columns=["responder"]).head(6).copy()
    table["relapses_y1"] = ["0", "1", "2", "0", "", "0"]
    table["new_t2_y1"] = ["0", "0", "0", "5", "0", ""]
    return table


def test_magnims_labels_reach_the_panel(follow_up_table):
    panel = read_training_panel(follow_up_table, "magnims")
    # MAGNIMS: 0 relapses & <3 T2 -> 0; 1 relapse & <3 -> 1; >=2 relapses -> 2; 0 rel & >=3 -> 1
    # row 6: no relapse, MRI missing -> score 0 or 1, a responder either way
    expected = [1.0, 1.0, 0.0, 1.0, np.nan, 1.0]
    np.testing.assert_array_equal(panel.responder.to_numpy(dtype=float), expected)
    assert any("left out of training" in w for w in panel.warnings)


def test_responder_column_and_label_from_together_is_refused(follow_up_table):
    table = follow_up_table.assign(responder="1")
    with pytest.raises(InputError, match="remove one of the two"):
        read_training_panel(table, "neda3")


def test_missing_follow_up_columns_are_all_listed(cohort):
    table = cohort.panel.drop(columns=["responder"]).head(3)
    with pytest.raises(InputError) as info:
        read_training_panel(table, "rio")
    text = str(info.value)
    assert "relapses_y1" in text and "edss_progression_y1" in text


def test_without_label_from_the_responder_column_is_required(cohort):
    table = cohort.panel.drop(columns=["responder"]).head(3)
    with pytest.raises(InputError, match="responder"):
        read_training_panel(pd.DataFrame(table))


@pytest.mark.parametrize(
    ("cells", "positive", "expected"),
    [
        (["1", "yes", "0", "no"], None, [1, 1, 0, 0]),  # two spellings of each class
        (["Yes", "yes", "No", "no"], None, [1, 1, 0, 0]),
        (["Died", "died", "Survived", "survived"], "died", [1, 1, 0, 0]),
    ],
)
def test_label_levels_are_counted_after_matching(cells, positive, expected):
    table = pd.DataFrame({"sample_id": list("ABCD"), "therapy": "ifnb", "IL6": 1.0,
                          "status": cells})
    panel = read_training_panel(table, label="status", positive=positive)
    assert panel.responder.tolist() == expected


def test_one_class_under_two_spellings_is_refused():
    """'1' and 'yes' are one class: not a two-level outcome (every patient a responder)."""
    table = pd.DataFrame({"sample_id": list("ABCD"), "therapy": "ifnb", "IL6": 1.0,
                          "status": ["1", "yes", "1", "yes"]})
    with pytest.raises(InputError, match="exactly two values"):
        read_training_panel(table, label="status")
