import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cytoresp.models.attribution import distribute_to_inputs, snap_to_total

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


# -- the linear part goes exactly, the trees by displacement ---------------------------------
def test_linear_part_gets_exact_shapley_values_even_when_constituents_cancel():
    # A +2, B +1.9: the ratio barely moves, but a linear term in log2(A/B) with slope 0.5
    # is 0.5 zA - 0.5 zB in the inputs: exact Shapley values +1.0 and -0.95.
    Z = np.array([[3.0, 3.9, 0.5, 40.0]])
    F = features_of(Z)
    lin = np.zeros((1, 4))
    lin[0, 1] = 0.5 * (F[0, 1] - (BG[0] - BG[1]))
    slope = np.array([0.0, 0.5, 0.0, 0.0])
    out = distribute_to_inputs(lin, F, Z, BG, W, SOURCES, linear_phi=lin, linear_slope=slope)
    np.testing.assert_allclose(out[0], [1.0, -0.95, 0.0, 0.0], atol=1e-12)


def test_tree_part_shares_by_displacement_with_the_sign_of_the_feature():
    # Same cancelling row, a tree value of +0.39 on the ratio: both constituents get a
    # positive part in proportion to how far each moved (2 and 1.9), never +8 and -7.6.
    Z = np.array([[3.0, 3.9, 0.5, 40.0]])
    phi = np.array([[0.0, 0.39, 0.0, 0.0]])
    lin = np.zeros((1, 4))
    out = distribute_to_inputs(
        phi, features_of(Z), Z, BG, W, SOURCES, linear_phi=lin, linear_slope=np.zeros(4)
    )
    np.testing.assert_allclose(out[0], [0.2, 0.19, 0.0, 0.0], atol=1e-12)


def test_linear_residual_of_an_axis_goes_to_its_missing_member():
    # Axis over A, B, C with B missing: the score averages A and C (row weights 1/2).
    Z = np.array([[2.0, np.nan, 1.5, 40.0]])  # A +1, C +1 vs the background
    F = features_of(Z)  # axis = mean(2, 1.5) = 1.75; at the background means: 7/6
    slope = np.array([0.0, 0.0, 0.6, 0.0])
    lin = np.zeros((1, 4))
    lin[0, 2] = 0.6 * (F[0, 2] - BG[:3].mean())
    rw = {2: np.array([[0.5, 0.0, 0.5]])}
    out = distribute_to_inputs(
        lin, F, Z, BG, W, SOURCES, linear_phi=lin, linear_slope=slope, row_weights=rw
    )
    # A and C: 0.6 * 0.5 * 1 each; what is left (0.6 * (1.75 - 7/6) - 0.6) goes to B.
    np.testing.assert_allclose(out[0, [0, 2]], [0.3, 0.3], atol=1e-12)
    np.testing.assert_allclose(out[0, 1], 0.6 * (1.75 - 7 / 6) - 0.6, atol=1e-12)
    np.testing.assert_allclose(out.sum(), lin.sum(), atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(
    Z=arrays(np.float64, (6, 4), elements=values),
    phi=arrays(np.float64, (6, 4), elements=st.floats(-3, 3, allow_nan=False)),
    slope=arrays(np.float64, (4,), elements=st.floats(-2, 2, allow_nan=False)),
)
def test_rows_add_up_exactly_with_an_exact_linear_part(Z, phi, slope):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        F = features_of(Z)
    means = np.array([BG[0], BG[0] - BG[1], BG[:3].mean(), BG[3]])
    lin = np.where(np.isnan(F), 0.0, slope * (F - means))
    out = distribute_to_inputs(phi + lin, F, Z, BG, W, SOURCES, linear_phi=lin, linear_slope=slope)
    np.testing.assert_allclose(out.sum(axis=1), (phi + lin).sum(axis=1), atol=1e-9)
    assert np.isfinite(out).all()
    # the tree part is bounded by its feature's value: |share| <= 1
    only_trees = distribute_to_inputs(phi, F, Z, BG, W, SOURCES)
    assert (np.abs(only_trees) <= np.abs(phi).sum(axis=1, keepdims=True) + 1e-12).all()


def test_linear_phi_needs_its_slope():
    Z = np.array([[1.0, 2.0, 0.5, 40.0]])
    with pytest.raises(ValueError, match="linear_phi needs linear_slope"):
        distribute_to_inputs(
            np.zeros((1, 4)), features_of(Z), Z, BG, W, SOURCES, linear_phi=np.zeros((1, 4))
        )


def test_snap_to_total_spreads_the_gap_by_size():
    out = snap_to_total(np.array([[1.0, -3.0, 0.0], [0.0, 0.0, 0.0]]), np.array([-2.004, 0.3]))
    np.testing.assert_allclose(out, [[0.999, -3.003, 0.0], [0.1, 0.1, 0.1]], atol=1e-12)
