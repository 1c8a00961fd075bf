import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cytoresp.models.attribution import distribute_to_inputs

# Inputs: A, B, C, age. Features: log A, A/B, mean(A, B, C) axis, age.
W = np.array(
    [
        [1.0, 0.0, 0.0, 0.0],
        [1.0, -1.0, 0.0, 0.0],
        [1 / 3, 1 / 3, 1 / 3, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
SOURCES = [[0], [0, 1], [0, 1, 2], [3]]
BG = np.array([1.0, 2.0, 0.5, 40.0])


def features_of(Z):
    f = Z @ W.T
    # the axis is the mean over present members
    f[:, 2] = np.nanmean(Z[:, :3], axis=1) if Z.shape[0] else f[:, 2]
    return f


values = st.floats(-8, 8, allow_nan=False) | st.just(np.nan)


@settings(max_examples=200, deadline=None)
@given(
    Z=arrays(np.float64, (5, 4), elements=values),
    phi=arrays(np.float64, (5, 4), elements=st.floats(-3, 3, allow_nan=False)),
)
def test_rows_add_up_exactly(Z, phi):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        F = features_of(Z)
    out = distribute_to_inputs(phi, F, Z, BG, W, SOURCES)
    np.testing.assert_allclose(out.sum(axis=1), phi.sum(axis=1), atol=1e-9)
    assert np.isfinite(out).all()


def test_rescale_rule_shares_by_signed_deviation():
    Z = np.array([[3.0, 1.0, 0.5, 40.0]])  # A +2, B -1 vs background: A/B moved by +3
    phi = np.array([[0.0, 0.9, 0.0, 0.0]])
    out = distribute_to_inputs(phi, features_of(Z), Z, BG, W, SOURCES)
    np.testing.assert_allclose(out[0], [0.6, 0.3, 0.0, 0.0])


def test_cancelling_constituents_use_absolute_shares():
    Z = np.array([[3.0, 3.9, 0.5, 40.0]])  # A +2, B +1.9: ratio nearly unchanged
    phi = np.array([[0.0, 0.39, 0.0, 0.0]])
    out = distribute_to_inputs(phi, features_of(Z), Z, BG, W, SOURCES)
    np.testing.assert_allclose(out[0, :2], [0.39 * 2 / 3.9, 0.39 * 1.9 / 3.9])


def test_missing_constituent_owns_the_missing_feature():
    Z = np.array([[3.0, np.nan, 0.5, 40.0]])
    F = features_of(Z)
    assert np.isnan(F[0, 1])
    phi = np.array([[0.0, -0.4, 0.0, 0.0]])
    out = distribute_to_inputs(phi, F, Z, BG, W, SOURCES)
    np.testing.assert_allclose(out[0], [0.0, -0.4, 0.0, 0.0])


def test_axis_with_a_missing_member_shares_among_present_members():
    Z = np.array([[2.0, np.nan, 1.5, 40.0]])  # A +1, C +1
    phi = np.array([[0.0, 0.0, 0.8, 0.0]])
    out = distribute_to_inputs(phi, features_of(Z), Z, BG, W, SOURCES)
    np.testing.assert_allclose(out[0], [0.4, 0.0, 0.4, 0.0])


def test_nonlinear_feature_goes_to_its_analyte():
    Z = np.array([[1.0, 2.0, 0.5, 40.0]])
    phi = np.array([[0.0, 0.0, 0.0, 0.0, 0.7]])
    W5 = np.vstack([W, np.zeros(4)])
    F = np.hstack([features_of(Z), [[1.0]]])
    out = distribute_to_inputs(phi, F, Z, BG, W5, [*SOURCES, [1]], nonlinear={4: 1})
    np.testing.assert_allclose(out[0], [0.0, 0.7, 0.0, 0.0])
