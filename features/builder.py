"""PanelFeatures: the model frame -> log2 cytokines, log-ratios, axis scores, covariates."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from cytoresp.errors import UsageError
from cytoresp.features.axes import AxisRowWeights, AxisScoreTransformer, check_axes
from cytoresp.features.censoring import (
    DEFAULT_BELOW_FACTOR,
    LOG_PREFIX,
    CensoredLog2Transformer,
    FeatureTransformer,
    check_below_factor,
    check_bool,
    floats_from_json,
    floats_to_json,
)
from cytoresp.features.covariates import CovariatePassthrough, check_covariates
from cytoresp.features.plates import DEFAULT_MIN_SAMPLES, PlateMedianNormaliser
from cytoresp.features.ratios import LogRatioTransformer, SkippedFeatureWarning, check_pairs
from cytoresp.panels.panel import CLINICAL_COVARIATES, PLATE_COLUMN


def _registry_resolver() -> Callable[[str], str | None] | None:
    try:
        from cytoresp.panels.registry import resolve_analyte
    except ImportError:
        return None
    return resolve_analyte


def _check_analytes(analytes: Any) -> tuple[str, ...] | None:
    """None for ``"auto"``, else the tuple of analyte column names."""
    if isinstance(analytes, str):
        if analytes == "auto":
            return None
        raise UsageError(f"analytes must be 'auto' or a list of column names, got {analytes!r}")
    if not isinstance(analytes, Sequence | np.ndarray) or not all(
        isinstance(a, str) and a for a in analytes
    ):
        raise UsageError(f"analytes must be 'auto' or a list of column names, got {analytes!r}")
    if len(set(analytes)) != len(analytes):
        raise UsageError(f"an analyte column is listed twice in {list(analytes)!r}")
    return tuple(analytes)


def _allow_empty(step: FeatureTransformer, ids: list[str]) -> FeatureTransformer:
    """``step``, accepting zero input columns when there is no analyte (only declared
    covariates and measurements: a transcript or NPX panel, docs/data-format.md)."""
    if not ids:
        step._min_features = 0
    return step


class PanelFeatures(FeatureTransformer):
    """The model's features from a model frame, with an exact affine map to the inputs.

    Input: the float64 frame of :meth:`Panel.to_model_frame` (analyte columns in pg/mL,
    ``-L`` = censored below ``L``, NaN = missing; then clinical covariates) or a numpy
    array (columns ``x0..xN``). Output, float64, in this order: ``log2_<ID>`` per analyte
    (if ``include_log``), ``<A>/<B>`` log-ratios, ``axis_<Axis>`` scores, the covariates,
    then ``<ID>_below_lloq`` indicators (if ``add_indicators``). NaN propagates.

    Analyte columns: with ``analytes="auto"``, the columns (other than clinical
    covariates) that the analyte registry resolves to a canonical id; if the registry is
    unavailable or resolves none of them (generic ``x0..xN`` input), every column that is
    not a clinical covariate. Columns neither analyte nor covariate are ignored (with a
    :class:`~cytoresp.features.ratios.SkippedFeatureWarning`).

    **Explanation inputs.** :meth:`transform_inputs` gives ``Z``: per analyte its log2
    value after censoring substitution (column named as the input column), per
    covariate its value; columns :attr:`input_names_`. Every output feature except the
    indicators is affine in ``Z``. On a row without missing values::

        transform(X) == Z @ input_weights_.T + feature_offsets_

    An axis score averages the members *present* in the row, so on rows with missing
    members its weights are ``1/k`` over the ``k`` present: :meth:`rowwise_weights`
    gives them. Log and ratio features are NaN when a source is NaN; covariates are
    themselves. Indicators are not affine: their weights are 0 and they are listed in
    :attr:`nonlinear_features_` (their value belongs to their analyte).

    Parameters
    ----------
    ratios : "default", None or sequence of pairs, default="default"
        Log-ratios, see :class:`~cytoresp.features.ratios.LogRatioTransformer`.
    axes : "default", None, sequence of axis names or mapping, default="default"
        Axis scores, see :class:`~cytoresp.features.axes.AxisScoreTransformer`
        (centered, ``min_members=1``).
    covariates : "default", None or sequence of str, default="default"
        Clinical covariates passed through, see
        :class:`~cytoresp.features.covariates.CovariatePassthrough`.
    include_log : bool, default=True
        Output the log2 cytokines themselves.
    below_factor : float, default=1/sqrt(2)
        Censored-below substitution ``L * below_factor``, see
        :class:`~cytoresp.features.censoring.CensoredLog2Transformer`.
    add_indicators : bool, default=False
        Append ``<ID>_below_lloq`` indicators.
    analytes : "auto" or sequence of str, default="auto"
        Analyte columns; ``"auto"`` as described above.
    plate_normalisation : bool, default=False
        Shift the log2 cytokines of each plate so that its median matches the training
        median (:class:`~cytoresp.features.plates.PlateMedianNormaliser`, fitted here,
        so inside every cross-validation fold). Needs a ``plate`` column of plate codes
        (:func:`~cytoresp.panels.panel.plate_codes`; ``Panel.to_model_frame(plate=True)``).
        Censored-below cells count at their limit in the medians. Everything downstream
        (ratios, axis scores, ``Z``) is built from the shifted logs, so the affine map
        below holds unchanged. A ``plate`` column is never an analyte: without
        normalisation it is ignored.
    plate_min_samples : int, default=8
        Fewest samples behind a plate median (``min_samples`` of the normaliser).

    Attributes
    ----------
    input_names_ : list of str
        Raw input columns used: analytes, then covariates. The columns of ``Z``.
    analytes_ : list of str
        Canonical id of each analyte column (the names in the output features).
    covariates_ : list of str
        Covariate columns passed through.
    ignored_columns_ : list of str
        Input columns not used (neither analyte nor passed-through covariate).
    input_weights_ : DataFrame, shape (n_features_out, n_inputs)
        ``W``: index the output features, columns :attr:`input_names_`.
    feature_offsets_ : Series, shape (n_features_out,)
        0 for logs, ratios, covariates and indicators; for a (centered) axis score minus
        the mean of its members' training medians.
    feature_sources_ : dict of str to list of str
        Output feature -> the inputs it is built from.
    nonlinear_features_ : list of str
        Output features that are not affine in ``Z`` (the indicators).
    log_, ratio_, axes_, cov_ : fitted sub-transformers.
    plates_ : PlateMedianNormaliser or None
        Fitted on ``[plate] + log2 analytes`` when ``plate_normalisation``, else None.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"IFNG": [8.0, -2.0, 4.0], "IL10": [2.0, 4.0, 4.0],
    ...                   "age": [30.0, 40.0, 50.0]})
    >>> pf = PanelFeatures(ratios=[("IFNG", "IL10")], axes={"Th1": ["IFNG"]},
    ...                    below_factor=0.5, analytes=["IFNG", "IL10"]).fit(X)
    >>> pf.get_feature_names_out().tolist()
    ['log2_IFNG', 'log2_IL10', 'IFNG/IL10', 'axis_Th1', 'age']
    >>> pf.transform(X)[1].tolist()   # IFNG "<2" -> log2(2 * 0.5) = 0; Th1 median is 2
    [0.0, 2.0, -2.0, -2.0, 40.0]
    >>> pf.input_weights_.loc["IFNG/IL10"].tolist(), float(pf.feature_offsets_["axis_Th1"])
    ([1.0, -1.0, 0.0], -2.0)
    """

    def __init__(
        self,
        ratios: Any = "default",
        axes: Any = "default",
        covariates: Any = "default",
        include_log: bool = True,
        below_factor: float = DEFAULT_BELOW_FACTOR,
        add_indicators: bool = False,
        analytes: Any = "auto",
        plate_normalisation: bool = False,
        plate_min_samples: int = DEFAULT_MIN_SAMPLES,
    ):
        self.ratios = ratios
        self.axes = axes
        self.covariates = covariates
        self.include_log = include_log
        self.below_factor = below_factor
        self.add_indicators = add_indicators
        self.analytes = analytes
        self.plate_normalisation = plate_normalisation
        self.plate_min_samples = plate_min_samples

    def _check_params(self) -> None:
        check_pairs(self.ratios)
        check_axes(self.axes)
        check_covariates(self.covariates)
        check_bool(self.include_log, "include_log")
        check_below_factor(self.below_factor)
        check_bool(self.add_indicators, "add_indicators")
        _check_analytes(self.analytes)
        check_bool(self.plate_normalisation, "plate_normalisation")
        PlateMedianNormaliser(PLATE_COLUMN, self.plate_min_samples)._check_params()

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        params = dict(params)
        if isinstance(params.get("ratios"), list):
            params["ratios"] = [tuple(p) if isinstance(p, list) else p for p in params["ratios"]]
        return params

    # -- fit -------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> PanelFeatures:
        """Split analytes from covariates and fit the log, ratio and axis steps.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_columns)
            The model frame.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        Xa = self._validate(X, reset=True)
        names = self._names_in()
        if len(set(names)) != len(names):
            raise UsageError(f"PanelFeatures: duplicate input column names in {names!r}")
        frame = pd.DataFrame(Xa, columns=names, copy=False)

        self.cov_ = CovariatePassthrough(self.covariates).fit(frame)
        self.covariates_ = list(self.cov_.covariates_)
        acols, ids = self._split_analytes(names)
        self.analyte_columns_ = acols
        self.analytes_ = ids
        position = {n: i for i, n in enumerate(names)}
        self.analyte_indices_ = np.asarray([position[c] for c in acols], dtype=np.intp)
        self.input_names_ = acols + self.covariates_
        used = set(self.input_names_)
        self.ignored_columns_ = [n for n in names if n not in used]

        self.plate_index_ = None
        if self.plate_normalisation:
            if PLATE_COLUMN not in names:
                raise UsageError(
                    f"PanelFeatures: plate_normalisation needs a {PLATE_COLUMN!r} column "
                    f"(plate codes, see cytoresp.panels.panel.plate_codes); the input has "
                    f"{names!r}"
                )
            self.plate_index_ = position[PLATE_COLUMN]
            self.ignored_columns_.remove(PLATE_COLUMN)

        A = Xa[:, self.analyte_indices_]
        self.log_ = _allow_empty(CensoredLog2Transformer(self.below_factor, self.add_indicators),
                                 ids).fit(pd.DataFrame(A, columns=ids, copy=False) if ids else A)
        Z = self.log_._log2(A)
        self.plates_ = None
        if self.plate_normalisation:
            log_names = [LOG_PREFIX + i for i in ids]
            norm = PlateMedianNormaliser(PLATE_COLUMN, self.plate_min_samples)
            norm.n_features_in_ = len(ids) + 1
            norm.feature_names_in_ = np.asarray([PLATE_COLUMN, *log_names], dtype=object)
            norm.plate_index_ = 0
            norm.analyte_indices_ = np.arange(1, len(ids) + 1, dtype=np.intp)
            at_limit, below = self._limits(Z, A)
            self.plates_ = norm._fit_arrays(at_limit, Xa[:, self.plate_index_], below)
            Z += self._plate_shift(Xa, A, Z)
        logs = pd.DataFrame(Z, columns=[LOG_PREFIX + i for i in ids], copy=False) if ids else Z
        self.ratio_ = _allow_empty(LogRatioTransformer(self.ratios), ids).fit(logs)
        self.axes_ = _allow_empty(AxisScoreTransformer(self.axes), ids).fit(logs)
        self._build_map()
        return self

    def _limits(self, Z: np.ndarray, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log2 values with censored-below cells at their limit, censored-below mask)."""
        below = A < 0
        at_limit = Z - np.where(below, np.log2(float(self.below_factor)), 0.0)
        return at_limit, below

    def _plate_shift(self, Xa: np.ndarray, A: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Per-cell shift of the log2 block by the plate normaliser."""
        at_limit, below = self._limits(Z, A)
        return self.plates_.shifts(at_limit, Xa[:, self.plate_index_], below)

    def _split_analytes(self, names: list[str]) -> tuple[list[str], list[str]]:
        """``(analyte columns, their canonical ids)``; warns about unknown columns."""
        excluded = set(CLINICAL_COVARIATES) | set(self.covariates_) | {PLATE_COLUMN}
        candidates = [n for n in names if n not in excluded]
        resolve = _registry_resolver()
        resolved = {n: (resolve(n) if resolve else None) for n in candidates}
        wanted = _check_analytes(self.analytes)
        if wanted is None:
            if any(resolved.values()):
                acols = [n for n in candidates if resolved[n]]
                ignored = [n for n in candidates if not resolved[n]]
                if ignored:
                    warnings.warn(
                        SkippedFeatureWarning(
                            f"PanelFeatures: ignored column(s) that are neither a known "
                            f"analyte nor a clinical covariate: {', '.join(ignored)}"
                        ),
                        stacklevel=3,
                    )
            else:  # no registry, or generic input: every non-covariate column
                acols = candidates
        else:
            clash = [a for a in wanted if a in self.covariates_]
            if clash:
                raise UsageError(f"column(s) {clash} cannot be both analyte and covariate")
            acols = [a for a in wanted if a in names]
            absent = [a for a in wanted if a not in names]
            if absent:
                warnings.warn(
                    SkippedFeatureWarning(
                        f"PanelFeatures: skipped analyte column(s) absent from the input: "
                        f"{', '.join(absent)}"
                    ),
                    stacklevel=3,
                )
        # without analytes only when covariates are listed (declared covariates and
        # measurements, e.g. a transcript panel): never by default
        explicit = check_covariates(self.covariates) is not None
        if not acols and not (explicit and self.covariates_):
            raise UsageError(f"PanelFeatures: no analyte column in the input {names!r}")
        ids = [resolved.get(c) or c for c in acols]
        seen: dict[str, str] = {}
        for col, id_ in zip(acols, ids, strict=True):
            if id_ in seen:
                raise UsageError(
                    f"PanelFeatures: columns {seen[id_]!r} and {col!r} are the same analyte {id_}"
                )
            seen[id_] = col
        return acols, ids

    def _build_map(self) -> None:
        """input_weights_, feature_offsets_, feature_sources_, nonlinear_features_."""
        feats = list(self.get_feature_names_out())
        if len(set(feats)) != len(feats):
            dup = sorted({f for f in feats if feats.count(f) > 1})
            raise UsageError(f"PanelFeatures: output feature names collide: {dup}")
        inputs, acols, p = self.input_names_, self.analyte_columns_, len(self.analyte_columns_)
        W = np.zeros((len(feats), len(inputs)), dtype=np.float64)
        offsets = np.zeros(len(feats), dtype=np.float64)
        sources: dict[str, list[str]] = {}
        r = 0
        if self.include_log:
            for i in range(p):
                W[r, i] = 1.0
                sources[feats[r]] = [acols[i]]
                r += 1
        for i, j in self.ratio_.pair_indices_:
            W[r, i], W[r, j] = 1.0, -1.0
            sources[feats[r]] = [acols[i], acols[j]]
            r += 1
        for members in self.axes_.axes_.values():
            cols = [self.axes_.member_columns_[m] for m in members]
            w = 1.0 / len(cols)
            W[r, cols] = w
            for m in members:  # same operations as AxisScoreTransformer.rowwise_weights
                offsets[r] -= w * self.axes_.centers_[m]
            sources[feats[r]] = [acols[c] for c in cols]
            r += 1
        for j, c in enumerate(self.covariates_):
            W[r, p + j] = 1.0
            sources[feats[r]] = [c]
            r += 1
        nonlinear = []
        for i in np.flatnonzero(self.log_.indicator_mask_):
            sources[feats[r]] = [acols[i]]
            nonlinear.append(feats[r])
            r += 1
        self.input_weights_ = pd.DataFrame(W, index=feats, columns=inputs)
        self.feature_offsets_ = pd.Series(offsets, index=feats)
        self.feature_sources_ = sources
        self.nonlinear_features_ = nonlinear

    # -- transform ---------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """The features, float64 of shape (n_samples, n_features_out)."""
        check_is_fitted(self)
        return self._transform_array(self._validate(X, reset=False))

    def _analyte_block(self, Xa: np.ndarray) -> np.ndarray:
        idx = self.analyte_indices_
        if np.array_equal(idx, np.arange(len(idx))):
            return Xa[:, : len(idx)]  # a view: the usual model frame, analytes first
        return Xa[:, idx]

    def _transform_array(self, Xa: np.ndarray) -> np.ndarray:
        # Each block is written straight into one F-ordered output (contiguous columns):
        # no n x n_features temporaries, no final concatenation.
        A = self._analyte_block(Xa)
        n, p = A.shape
        sizes = [
            p if self.include_log else 0,
            len(self.ratio_.pairs_),
            len(self.axes_.axes_),
            len(self.covariates_),
            int(self.log_.indicator_mask_.sum()),
        ]
        out = np.empty((n, sum(sizes)), dtype=np.float64, order="F")
        bounds = np.cumsum([0, *sizes])
        block = [out[:, bounds[k] : bounds[k + 1]] for k in range(len(sizes))]
        Z = self.log_._log2(A, out=block[0] if self.include_log else None)
        if self.plates_ is not None:
            Z += self._plate_shift(Xa, A, Z)
        self.ratio_._transform_array(Z, out=block[1])
        self.axes_._transform_array(Z, out=block[2])
        self.cov_._transform_array(Xa, out=block[3])
        self.log_._indicators(A, out=block[4])
        return out

    def transform_inputs(self, X: Any) -> pd.DataFrame:
        """The explanation inputs ``Z`` (log2 analytes after censoring, covariates).

        Parameters
        ----------
        X : DataFrame or array
            The model frame, as for :meth:`transform`.

        Returns
        -------
        DataFrame of shape (n_samples, len(input_names_))
            Columns :attr:`input_names_`; the index of ``X`` when it is a DataFrame.
        """
        check_is_fitted(self)
        Xa = self._validate(X, reset=False)
        A = self._analyte_block(Xa)
        p = A.shape[1]
        Z = np.empty((A.shape[0], p + len(self.covariates_)), dtype=np.float64, order="F")
        self.log_._log2(A, out=Z[:, :p])
        if self.plates_ is not None:
            Z[:, :p] += self._plate_shift(Xa, A, Z[:, :p])
        self.cov_._transform_array(Xa, out=Z[:, p:])
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(Z, columns=list(self.input_names_), index=index, copy=False)

    def rowwise_weights(self, Z: Any) -> AxisRowWeights:
        """Per-row affine weights of the axis scores, which rebuild them exactly.

        Parameters
        ----------
        Z : DataFrame or array of shape (n_samples, len(input_names_))
            Explanation inputs from :meth:`transform_inputs` (a DataFrame must have
            exactly the columns :attr:`input_names_`).

        Returns
        -------
        AxisRowWeights
            ``slot_input`` indexes the columns of ``Z``; ``feature_index`` the positions of
            the axis scores in :meth:`get_feature_names_out`; ``weights`` has shape
            (n_samples, n_slots) and ``offsets`` (n_samples, n_axes), n_slots being the
            total number of axis members. ``rw.apply(Z)`` equals the axis columns of
            :meth:`transform` on every row (NaN where the score is missing).

        Examples
        --------
        >>> import pandas as pd
        >>> X = pd.DataFrame({"IFNG": [2.0, 8.0], "TNF": [4.0, None]})
        >>> pf = PanelFeatures(ratios=None, axes={"Th1": ["IFNG", "TNF"]},
        ...                    include_log=False).fit(X)
        >>> rw = pf.rowwise_weights(pf.transform_inputs(X))
        >>> rw.weights.tolist()   # row 2: TNF missing, IFNG carries the whole score
        [[0.5, 0.5], [1.0, 0.0]]
        >>> rw.apply(pf.transform_inputs(X)).ravel().tolist() == pf.transform(X).ravel().tolist()
        True
        """
        check_is_fitted(self)
        if isinstance(Z, pd.DataFrame):
            if list(Z.columns) != list(self.input_names_):
                raise UsageError(
                    f"rowwise_weights: Z must have the columns input_names_ "
                    f"{self.input_names_}, got {list(Z.columns)}"
                )
        z = np.asarray(Z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != len(self.input_names_):
            raise UsageError(
                f"rowwise_weights: Z must have shape (n_samples, {len(self.input_names_)}), "
                f"got {z.shape}"
            )
        rw = self.axes_._rowwise(z[:, : len(self.analyte_columns_)])
        first = (len(self.analytes_) if self.include_log else 0) + len(self.ratio_.pairs_)
        return dataclasses.replace(rw, feature_index=rw.feature_index + first)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """Output feature names (fitted; ``input_features`` is only validated)."""
        self._check_input_features(input_features)
        log_names = list(self.log_.get_feature_names_out())
        p = len(self.analytes_)
        names = log_names[:p] if self.include_log else []
        names += list(self.ratio_.get_feature_names_out())
        names += list(self.axes_.get_feature_names_out())
        names += list(self.covariates_)
        names += log_names[p:]
        return np.asarray(names, dtype=object)

    # -- persistence -----------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        return {
            "analyte_columns_": list(self.analyte_columns_),
            "analytes_": list(self.analytes_),
            "analyte_indices_": self.analyte_indices_.tolist(),
            "covariates_": list(self.covariates_),
            "ignored_columns_": list(self.ignored_columns_),
            "input_names_": list(self.input_names_),
            "log_": self.log_.to_dict(),
            "ratio_": self.ratio_.to_dict(),
            "axes_": self.axes_.to_dict(),
            "cov_": self.cov_.to_dict(),
            "plates_": None if self.plates_ is None else self.plates_.to_dict(),
            # derived from the above; stored for readers, checked on load
            "feature_names_out": [str(f) for f in self.get_feature_names_out()],
            "input_weights_": [floats_to_json(r) for r in self.input_weights_.to_numpy()],
            "feature_offsets_": floats_to_json(self.feature_offsets_.to_numpy()),
            "feature_sources_": {k: list(v) for k, v in self.feature_sources_.items()},
            "nonlinear_features_": list(self.nonlinear_features_),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.analyte_columns_ = [str(c) for c in state["analyte_columns_"]]
        self.analytes_ = [str(c) for c in state["analytes_"]]
        self.analyte_indices_ = np.asarray(state["analyte_indices_"], dtype=np.intp)
        self.covariates_ = [str(c) for c in state["covariates_"]]
        self.ignored_columns_ = [str(c) for c in state["ignored_columns_"]]
        self.input_names_ = [str(c) for c in state["input_names_"]]
        self.log_ = CensoredLog2Transformer.from_dict(state["log_"])
        self.ratio_ = LogRatioTransformer.from_dict(state["ratio_"])
        self.axes_ = AxisScoreTransformer.from_dict(state["axes_"])
        self.cov_ = CovariatePassthrough.from_dict(state["cov_"])
        saved_plates = state.get("plates_")  # absent in models saved before it existed
        self.plates_ = (
            None if saved_plates is None else PlateMedianNormaliser.from_dict(saved_plates)
        )
        names = self._names_in()
        self.plate_index_ = names.index(PLATE_COLUMN) if self.plates_ is not None else None
        p = len(self.analyte_columns_)
        consistent = (
            len(self.analytes_) == p == len(self.analyte_indices_) == self.log_.n_features_in_
            and self.input_names_ == self.analyte_columns_ + self.covariates_
            and self.covariates_ == self.cov_.covariates_
            and self.ratio_.n_features_in_ == p == self.axes_.n_features_in_
            and self.cov_.n_features_in_ == self.n_features_in_
            and all(0 <= i < self.n_features_in_ for i in self.analyte_indices_)
            and (self.plates_ is not None) == bool(self.plate_normalisation)
            and (self.plates_ is None or self.plates_.n_features_in_ == p + 1)
        )
        if not consistent:
            raise ValueError("the sub-transformers do not match the input columns")
        self._build_map()
        same = (
            [str(f) for f in self.get_feature_names_out()] == state["feature_names_out"]
            and np.array_equal(
                self.input_weights_.to_numpy(),
                np.asarray([floats_from_json(r) for r in state["input_weights_"]]).reshape(
                    self.input_weights_.shape
                ),
            )
            and np.array_equal(
                self.feature_offsets_.to_numpy(), floats_from_json(state["feature_offsets_"])
            )
            and self.feature_sources_ == {k: list(v) for k, v in state["feature_sources_"].items()}
            and self.nonlinear_features_ == list(state["nonlinear_features_"])
        )
        if not same:
            raise ValueError("the stored affine map does not match the stored transformers")
