"""Log-ratios of cytokine pairs: log2(A/B) = log2 A - log2 B."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from cytoresp.errors import UsageError
from cytoresp.features.censoring import FeatureTransformer, analyte_lookup, analyte_of

#: Default ratios (numerator, denominator), canonical analyte ids. Pro-inflammatory
#: (Th1: IFNG, TNF, IL12; Th17: IL17A, IL17F; innate: IL6) over regulatory (IL10) or Th2
#: (IL4) cytokines, and Th17 over Th1: the balances the MS literature links to disease
#: activity and to the response to IFN-beta and glatiramer acetate (DESIGN.md).
DEFAULT_RATIO_PAIRS: tuple[tuple[str, str], ...] = (
    ("IFNG", "IL10"),
    ("IFNG", "IL4"),
    ("IL17A", "IL10"),
    ("IL17F", "IL10"),
    ("TNF", "IL10"),
    ("TNF", "IL4"),
    ("IL6", "IL10"),
    ("IL12", "IL10"),
    ("IL17A", "IFNG"),
)


class SkippedFeatureWarning(UserWarning):
    """A requested feature (ratio, axis score, covariate) was skipped: its inputs are absent.

    Filter it with ``warnings.simplefilter("ignore", SkippedFeatureWarning)``.
    """


def check_pairs(pairs: Any) -> tuple[tuple[str, str], ...]:
    """Normalise ``pairs`` to a tuple of (numerator, denominator) analyte ids.

    Accepts ``"default"``, None (no ratios), or a sequence whose items are 2-sequences of
    strings or ``"A/B"`` strings. Raises UsageError on anything else, on a pair naming the
    same analyte twice and on a ratio listed twice (also as its inverse).
    """
    if isinstance(pairs, str):
        if pairs == "default":
            return DEFAULT_RATIO_PAIRS
        raise UsageError(f"pairs must be 'default', None or a list of pairs, got {pairs!r}")
    if pairs is None:
        return ()
    if not isinstance(pairs, Sequence | np.ndarray):
        raise UsageError(f"pairs must be 'default', None or a list of pairs, got {pairs!r}")
    out: list[tuple[str, str]] = []
    for item in pairs:
        pair = tuple(item.split("/")) if isinstance(item, str) else item
        if (
            not isinstance(pair, Sequence | np.ndarray)
            or isinstance(pair, str)
            or len(pair) != 2
            or not all(isinstance(a, str) and a for a in pair)
        ):
            raise UsageError(
                f"each ratio must be a pair of analyte ids such as ('IFNG', 'IL10') or "
                f"'IFNG/IL10', got {item!r}"
            )
        a, b = (str(x) for x in pair)
        if a == b:
            raise UsageError(f"ratio {a}/{b} names the same analyte twice")
        if (a, b) in out or (b, a) in out:
            raise UsageError(f"ratio {a}/{b} is listed twice (possibly as its inverse)")
        out.append((a, b))
    return tuple(out)


class LogRatioTransformer(FeatureTransformer):
    """log2(A/B) for configured analyte pairs, from log2 concentrations.

    The input columns are log2 concentrations named ``log2_<ID>`` (the output of
    :class:`~cytoresp.features.censoring.CensoredLog2Transformer`) or plain ``<ID>``. The
    ratio of a pair is the difference of the two logs, named ``<A>/<B>``. NaN propagates.
    A pair whose analytes are not both present at fit is skipped with a
    :class:`SkippedFeatureWarning`; if no pair is usable the output has zero columns.

    Parameters
    ----------
    pairs : "default", None or sequence of (str, str) or "A/B" str, default="default"
        Ratios to compute, by canonical analyte id. ``"default"`` is
        :data:`DEFAULT_RATIO_PAIRS`; None gives no ratios.

    Attributes
    ----------
    pairs_ : list of (str, str)
        The pairs computed, in order.
    pair_indices_ : ndarray of int, shape (n_pairs, 2)
        Input columns of numerator and denominator of each pair.
    skipped_pairs_ : list of (str, str)
        Requested pairs skipped because an analyte was absent.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"log2_IFNG": [3.0, 1.0], "log2_IL10": [1.0, 2.0]})
    >>> t = LogRatioTransformer(pairs=[("IFNG", "IL10")]).fit(X)
    >>> t.get_feature_names_out().tolist(), t.transform(X).ravel().tolist()
    (['IFNG/IL10'], [2.0, -1.0])
    """

    def __init__(self, pairs: Any = "default"):
        self.pairs = pairs

    def _check_params(self) -> None:
        check_pairs(self.pairs)

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        params = dict(params)
        if isinstance(params.get("pairs"), list):
            params["pairs"] = [tuple(p) if isinstance(p, list) else p for p in params["pairs"]]
        return params

    def fit(self, X: Any, y: Any = None) -> LogRatioTransformer:
        """Find the columns of each pair; skip (with a warning) pairs not present.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            log2 concentrations.
        y : ignored

        Returns
        -------
        self
        """
        pairs = check_pairs(self.pairs)
        self._validate(X, reset=True)
        lookup = analyte_lookup(self._names_in())
        used, idx, skipped = [], [], []
        for a, b in pairs:
            absent = [x for x in (a, b) if x not in lookup]
            if absent:
                skipped.append(((a, b), absent))
            else:
                used.append((a, b))
                idx.append((lookup[a], lookup[b]))
        if skipped:
            detail = "; ".join(f"{a}/{b} (no {', '.join(m)})" for (a, b), m in skipped)
            warnings.warn(
                SkippedFeatureWarning(
                    f"LogRatioTransformer: skipped {len(skipped)} of {len(pairs)} ratio(s) "
                    f"whose analytes are absent from the input: {detail}"
                ),
                stacklevel=2,
            )
        self.pairs_ = used
        self.pair_indices_ = np.asarray(idx, dtype=np.intp).reshape(-1, 2)
        self.skipped_pairs_ = [p for p, _ in skipped]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """log2 ratios, float64 of shape (n_samples, n_pairs)."""
        check_is_fitted(self)
        return self._transform_array(self._validate(X, reset=False))

    def _transform_array(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            out = np.empty((X.shape[0], len(self.pair_indices_)), dtype=np.float64, order="F")
        for k, (i, j) in enumerate(self.pair_indices_):  # column by column: contiguous in F
            np.subtract(X[:, i], X[:, j], out=out[:, k])
        return out

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """``<A>/<B>`` per pair, from the (given or fitted) input names."""
        names = [analyte_of(n) for n in self._check_input_features(input_features)]
        return np.asarray([f"{names[i]}/{names[j]}" for i, j in self.pair_indices_], dtype=object)

    def _get_state(self) -> dict[str, Any]:
        return {
            "pairs_": [list(p) for p in self.pairs_],
            "pair_indices_": self.pair_indices_.tolist(),
            "skipped_pairs_": [list(p) for p in self.skipped_pairs_],
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.pairs_ = [tuple(p) for p in state["pairs_"]]
        self.pair_indices_ = np.asarray(state["pair_indices_"], dtype=np.intp).reshape(-1, 2)
        self.skipped_pairs_ = [tuple(p) for p in state["skipped_pairs_"]]
        idx = self.pair_indices_
        if len(self.pairs_) != len(idx) or (
            idx.size and not 0 <= idx.min() <= idx.max() < self.n_features_in_
        ):
            raise ValueError("pair_indices_ do not match pairs_ and the input columns")
