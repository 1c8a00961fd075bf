"""ResponseModel: one calibrated head per therapy, with cytokine-level explanations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.pipeline import Pipeline

from cytoresp.errors import UsageError
from cytoresp.models.attribution import balance_contributions, cytokine_contributions
from cytoresp.models.calibration import LogisticCalibrator
from cytoresp.models.choice import TherapyChoice, recommend_table
from cytoresp.models.recommend import BootstrapEnsemble
from cytoresp.models.shapley import Background
from cytoresp.panels.declared import DeclaredColumn, declared_columns
from cytoresp.panels.panel import Panel
from cytoresp.panels.therapies import (
    Therapy,
    declared_therapies,
    resolve_therapy,
    therapy_order,
)


@dataclass
class TherapyHead:
    """A fitted head for one therapy.

    Attributes
    ----------
    therapy : str
        Canonical therapy id (``"ifnb"``, ``"ga"``, ``"natalizumab"``, ...;
        ``docs/therapies.md``).
    pipeline : Pipeline
        ``("features", PanelFeatures) -> ("model", LinearBoostedClassifier)``.
    input_columns : list of str
        Columns of the model frame the pipeline was fitted on, in order.
    background : ndarray
        Mean of each explanation input (log2 cytokine, covariate) on the training rows
        (the arrows of the driver texts: above or below the training mean).
    calibrator : LogisticCalibrator
        The fitted logistic recalibration of the classifier's log-odds; every probability
        and explanation of this head goes through it. Default: the identity map.
    threshold : float
        Decision threshold on the calibrated probability, chosen inside cross-validation.
    background_sample : Background, optional
        The training rows (explanation inputs and below-LLOQ flags) the contributions are
        Shapley values against (:mod:`cytoresp.models.attribution`). None for models saved
        before it was stored: those are explained against ``background`` (the means).
    alert_threshold : float, optional
        Landmark heads only (:mod:`cytoresp.models.landmarks`): the early non-response
        alert is raised when the calibrated probability of response is at or below it.
    """

    therapy: str
    pipeline: Pipeline
    input_columns: list[str]
    background: np.ndarray
    calibrator: LogisticCalibrator = field(default_factory=LogisticCalibrator.from_coefficients)
    threshold: float = 0.5
    background_sample: Background | None = None
    alert_threshold: float | None = None

    @property
    def features(self):
        return self.pipeline.named_steps["features"]

    @property
    def model(self):
        return self.pipeline.named_steps["model"]

    def calibrated_margin(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated log-odds of response for rows of a model frame."""
        return self.calibrated_margin_of(self.engineered(frame))

    def engineered(self, frame: pd.DataFrame) -> np.ndarray:
        """The classifier's input for rows of a model frame (every step but the last)."""
        feats = self.pipeline[:-1].transform(frame[self.input_columns])
        return np.ascontiguousarray(feats, dtype=np.float64)

    def calibrated_margin_of(self, feats: np.ndarray) -> np.ndarray:
        """:meth:`calibrated_margin` from :meth:`engineered` features."""
        return self.calibrator.transform_margin(self.model.decision_function(feats))

    def response_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(response) for rows of a model frame, shape ``(n,)``."""
        return self.response_probability_of(self.engineered(frame))

    def response_probability_of(self, feats: np.ndarray) -> np.ndarray:
        """:meth:`response_probability` from :meth:`engineered` features."""
        return self.calibrator.response_probability(self.model.decision_function(feats))

    def cytokine_contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """Base value and input-level contributions, in calibrated log-odds.

        ``base + contributions.sum(axis=1)`` equals :meth:`calibrated_margin` row by row.
        The contributions are the exact interventional Shapley values of the head's
        log-odds on its raw inputs against :attr:`background_sample`
        (:mod:`cytoresp.models.attribution`, ``docs/explanations.md``).
        """
        return cytokine_contributions(self, frame)


@dataclass
class ResponseModel:
    """Predicts P(response | therapy) from a cytokine panel and explains it by cytokine.

    Parameters
    ----------
    heads : dict of str to TherapyHead
        One fitted head per therapy.
    training_ranges : dict of str to (float, float)
        Range of each input seen in training (pg/mL for analytes), for warnings.
    metadata : dict
        Training metadata: data fingerprint, metrics, configuration, library versions.
    ensemble : BootstrapEnsemble, optional
        Bootstrap refits of the heads (:mod:`cytoresp.models.recommend`): the spread of
        each therapy's probability shown in the patient report. Not used by
        :meth:`recommend`.
    choice : TherapyChoice, optional
        The cohort-level heterogeneity test and the calibration of the difference between
        therapies (:mod:`cytoresp.models.choice`) that :meth:`recommend` uses. None
        (one therapy, or a model saved before it existed): every recommendation is
        ``either``.
    training_quantiles : dict of str to list of float
        Per input column, its 0, 1, ..., 100th percentiles on the training rows (pg/mL for
        analytes, a value censored below its limit L counted at L / sqrt 2), where a
        patient's value sits (the patient report). Empty for models saved before it existed.
    landmarks : LandmarkHeads, optional
        Heads of the landmark months after baseline (``train --landmarks 0,3,6``;
        :mod:`cytoresp.models.landmarks`), scored by :meth:`score_visits`. None for a
        baseline-only model.

    Examples
    --------
    A model comes from :func:`~cytoresp.train.fitting.fit_response_model` (``model,
    reports = fit_response_model(cohort.panel)``), from ``cytoresp train`` or from
    :func:`cytoresp.load_model`; ``model`` below is one such model.

    >>> from cytoresp.datasets import simulate_cohort
    >>> model.therapies
    ['ifnb', 'ga']
    >>> proba = model.predict_proba(simulate_cohort(5, seed=2).panel)
    >>> proba.shape
    (5, 2)
    >>> list(proba.columns)
    ['p_response_ifnb', 'p_response_ga']
    >>> bool(((proba > 0) & (proba < 1)).all().all())
    True
    """

    heads: dict[str, TherapyHead]
    training_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    ensemble: BootstrapEnsemble | None = None
    training_quantiles: dict[str, list[float]] = field(default_factory=dict)
    choice: TherapyChoice | None = None
    landmarks: Any = None  # LandmarkHeads (cytoresp.models.landmarks) or None

    @property
    def therapies(self) -> list[str]:
        """Therapies with a fitted head, in registry order (declared ones last)."""
        return therapy_order(self.heads)

    @property
    def declared_therapies(self) -> dict[str, Therapy]:
        """Therapies the training config declared beside the registry (``docs/therapies.md``)."""
        return declared_therapies(self.metadata.get("declared_therapies"))

    @property
    def declared_columns(self) -> tuple[DeclaredColumn, ...]:
        """Covariates and measurements the training config declared (read the same way)."""
        d = self.metadata.get("declared_columns") or {}
        return declared_columns(d.get("covariates"), d.get("measurements"), d.get("sample_id"))

    @property
    def outcome_name(self) -> str:
        """The outcome in words (``outcome_name`` of the training config), e.g. ``response``."""
        return str(self.metadata.get("outcome_name") or "response")

    @property
    def input_columns(self) -> list[str]:
        """Union of the model-frame columns the heads use."""
        cols: list[str] = []
        for head in self.heads.values():
            cols += [c for c in head.input_columns if c not in cols]
        return cols

    # -- input handling ----------------------------------------------------------------
    def model_frame(self, data: Panel | pd.DataFrame | str | PathLike) -> pd.DataFrame:
        """The float64 model frame of ``data``, aligned on this model's input columns.

        ``data`` is a :class:`Panel`, a path to a panel file, or a canonical panel
        table (strings such as ``"<0.5"`` allowed). Columns the model needs but the data
        lacks are filled with NaN (reported by :meth:`row_warnings`). A model trained
        with per-plate normalisation needs the data's ``plate`` column (InputError if
        absent).
        """
        if not isinstance(data, Panel):
            from cytoresp.panels.read import read_panel

            data = read_panel(data, therapies=self.declared_therapies,
                              columns=self.declared_columns)
        plate = "plate" in self.input_columns  # per-plate normalisation (features/plates.py)
        return align_frame(data.to_model_frame(plate=plate), self.input_columns)

    def resolve_therapies(self, therapy: str | Iterable[str] | None = None) -> list[str]:
        """The therapies to score: every head for None, else the ones named.

        Parameters
        ----------
        therapy : str, iterable of str or None
            A therapy id or any name of it (``Tysabri``; a synonym declared at training),
            several, or None for all of :attr:`therapies`.

        Returns
        -------
        list of str

        Raises
        ------
        UsageError
            When a named therapy has no head in this model.

        Examples
        --------
        >>> model.resolve_therapies("ga")
        ['ga']
        """
        if therapy is None:
            return self.therapies
        names = [therapy] if isinstance(therapy, str) else list(therapy)
        # any name of a registered or declared therapy (Tysabri, a declared synonym)
        wanted = [
            t if t in self.heads else (resolve_therapy(t, self.declared_therapies) or t)
            for t in names
        ]
        unknown = [n for n, t in zip(names, wanted, strict=True) if t not in self.heads]
        if unknown:
            raise UsageError(
                f"this model has no head for therapy {', '.join(unknown)}; "
                f"it has: {', '.join(self.therapies)}"
            )
        return wanted

    # -- prediction --------------------------------------------------------------------
    def predict_proba(self, data, therapy: str | None = None) -> pd.DataFrame:
        """Calibrated probability of response under each therapy.

        Returns
        -------
        DataFrame
            Index ``sample_id`` in input order, columns ``p_response_<therapy>``.
        """
        frame = data if _is_model_frame(data) else self.model_frame(data)
        return self.predict_proba_frame(frame, therapy)

    def predict_proba_frame(
        self,
        frame: pd.DataFrame,
        therapy: str | None = None,
        margins: dict[str, np.ndarray] | None = None,
    ) -> pd.DataFrame:
        """:meth:`predict_proba` on an already aligned model frame.

        ``margins``: per therapy, the head's :meth:`TherapyHead.calibrated_margin` of
        ``frame`` where already computed (the batch scorer shares them with the
        explanations); computed otherwise.
        """
        out = {}
        for t in self.resolve_therapies(therapy):
            if margins is not None and t in margins:
                out[f"p_response_{t}"] = expit(margins[t])
            else:
                out[f"p_response_{t}"] = self.heads[t].response_probability(frame)
        return pd.DataFrame(out, index=frame.index)

    def explain(self, data, therapy: str | None = None, by: str = "cytokine") -> pd.DataFrame:
        """Explanation table (long format, DESIGN.md): Shapley values of the log-odds.

        Parameters
        ----------
        data : Panel, DataFrame or path
        therapy : str, optional
            One therapy; every head by default.
        by : {"cytokine", "balance"}
            ``"cytokine"`` (default): one row per cytokine or clinical covariate, the
            Shapley values of the raw inputs. ``"balance"``: one row per engineered
            feature (log-ratio such as ``IFNG/IL10``, axis score, log cytokine,
            covariate), the Shapley values with the features as players; same base
            value, same total (:func:`~cytoresp.models.attribution.balance_contributions`).

        Returns
        -------
        DataFrame
            Columns ``sample_id``, ``therapy``, ``feature``, ``contribution`` and
            ``base_value`` (log-odds). For each sample and therapy, ``base_value +
            sum(contribution)`` equals the model's log-odds.

        Examples
        --------
        >>> by_balance = model.explain(panel, "ifnb", by="balance")
        >>> "IFNG/IL10" in set(by_balance["feature"])
        True
        """
        if by not in ("cytokine", "balance"):
            raise UsageError(f"explain by 'cytokine' or 'balance', not {by!r}")
        frame = data if _is_model_frame(data) else self.model_frame(data)
        parts = []
        for t in self.resolve_therapies(therapy):
            if by == "balance":
                base, contrib = balance_contributions(self.heads[t], frame)
            else:
                base, contrib = self.heads[t].cytokine_contributions(frame)
            long = contrib.rename_axis(index="sample_id", columns="feature").stack()
            long = long.rename("contribution").reset_index()
            long.insert(1, "therapy", t)
            long["base_value"] = np.repeat(base, contrib.shape[1])
            parts.append(long)
        return pd.concat(parts, ignore_index=True)

    def shap_explanation(self, data, therapy: str | None = None, by: str = "cytokine"):
        """The contributions of one therapy head as a ``shap.Explanation``.

        ``values`` are the Shapley values (calibrated log-odds) of :meth:`explain`,
        ``base_values`` the base value of each row, ``data`` the players' values (log2
        concentration after censoring substitution, covariate value; the engineered
        feature values with ``by="balance"``), ``feature_names`` display names (IFN-γ,
        EDSS) or feature names, so that ``shap.plots.waterfall(e[0])``,
        ``shap.plots.beeswarm(e)`` and ``shap.plots.heatmap(e)`` work on it.

        Parameters
        ----------
        data : Panel, DataFrame or path
        therapy : str, optional
            Needed when the model has more than one head.
        by : {"cytokine", "balance"}

        Examples
        --------
        >>> e = model.shap_explanation(panel, "ga")
        >>> e.values.shape == (len(e.base_values), len(e.feature_names))
        True
        >>> bool(np.allclose(e.base_values + e.values.sum(axis=1),
        ...                  model.heads["ga"].calibrated_margin(model.model_frame(panel))))
        True
        """
        if therapy is None and len(self.therapies) > 1:
            raise UsageError(
                f"a shap.Explanation holds one therapy: name one of {', '.join(self.therapies)}"
            )
        (t,) = self.resolve_therapies(therapy or self.therapies[0])
        if by not in ("cytokine", "balance"):
            raise UsageError(f"explain by 'cytokine' or 'balance', not {by!r}")
        import shap

        from cytoresp.models.plots import display_label

        head = self.heads[t]
        frame = data if _is_model_frame(data) else self.model_frame(data)
        if by == "balance":
            base, contrib = balance_contributions(head, frame)
            values = head.engineered(frame)
            names = list(contrib.columns)
        else:
            from cytoresp.models.attribution import contributions_and_inputs

            base, contrib, Z = contributions_and_inputs(head, frame)
            values = Z.to_numpy(dtype=np.float64)
            names = [display_label(c) for c in contrib.columns]
        return shap.Explanation(
            values=contrib.to_numpy(dtype=np.float64),
            base_values=np.asarray(base, dtype=np.float64),
            data=values,
            feature_names=names,
            output_names=f"log-odds of response to {t}",
        )

    def top_drivers(
        self, frame: pd.DataFrame, therapy: str, k: int = 3, margin: np.ndarray | None = None
    ) -> pd.Series:
        """The ``k`` largest signed contributions per row as text, e.g. ``IL17F↑ -0.61``.

        ``margin``: the head's calibrated log-odds of ``frame`` if already computed.
        """
        from cytoresp.models.attribution import contributions_and_inputs

        _, contrib, Z = contributions_and_inputs(self.heads[therapy], frame, margin)
        return format_drivers(contrib, Z, self.heads[therapy].background, k)

    def recommend(self, data, level: float | None = None) -> pd.DataFrame:
        """The therapy with the better chance of response, or ``either``.

        Needs two or more heads. The decision rule, and what the interval covers, are in
        :mod:`cytoresp.models.choice`: a therapy is named only when the training cohort's
        heterogeneity test passed and the interval of the calibrated difference between
        the two leading therapies excludes 0.

        Parameters
        ----------
        data : Panel, DataFrame or path
        level : float, optional
            Interval level; default the model's (0.90).

        Returns
        -------
        DataFrame
            Index ``sample_id``: ``p_response_<therapy>`` for every head, then
            :data:`~cytoresp.models.choice.RECOMMENDATION_COLUMNS`.

        Examples
        --------
        >>> rec = model.recommend(panel)
        >>> list(rec.columns)  # doctest: +NORMALIZE_WHITESPACE
        ['p_response_ifnb', 'p_response_ga', 'leading_therapy', 'runner_up', 'difference',
         'difference_lower', 'difference_upper', 'recommended_therapy',
         'recommendation_reason']
        >>> bool(rec["recommended_therapy"].isin(["ifnb", "ga", "either"]).all())
        True
        """
        if len(self.therapies) < 2:
            raise UsageError(
                "a recommendation needs a model with at least two therapies (train --therapy all)"
            )
        frame = data if _is_model_frame(data) else self.model_frame(data)
        return self.recommend_frame(frame, level)

    def recommend_frame(
        self,
        frame: pd.DataFrame,
        level: float | None = None,
        margins: dict[str, np.ndarray] | None = None,
    ) -> pd.DataFrame:
        """:meth:`recommend` on an already aligned model frame (the batch scorer's hook)."""
        proba = self.predict_proba_frame(frame, margins=margins)
        return recommend_table(proba, self.choice, level)

    def summary(self) -> str:
        """A few lines: therapies, training sizes and the therapy-choice gate.

        Examples
        --------
        >>> print(model.summary())  # doctest: +ELLIPSIS
        ResponseModel: therapies ifnb, ga; ...
        """
        sizes = self.metadata.get("n_training", {})
        text = f"ResponseModel: therapies {', '.join(self.therapies)}"
        if sizes:
            text += "; training patients " + ", ".join(f"{t} {n}" for t, n in sizes.items())
        if self.choice is not None:
            text += "\n" + self.choice.summary()
        elif len(self.therapies) > 1:
            text += "\nno therapy-choice test stored: every recommendation is 'either'"
        return text

    def row_warnings(self, frame: pd.DataFrame) -> pd.Series:
        """Per-row warnings: missing analytes and values outside the training range."""
        return row_warnings(frame, self.input_columns, self.training_ranges)

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | PathLike) -> None:
        """Write the standalone model directory (JSON + native XGBoost, with a manifest)."""
        from cytoresp.models.persistence import save_model_dir

        save_model_dir(self, path)

    @classmethod
    def load(cls, path: str | PathLike) -> ResponseModel:
        """Load a standalone model directory after checking its manifest."""
        from cytoresp.models.persistence import load_model_dir

        return load_model_dir(path)


# -- helpers shared with the batch scorer ---------------------------------------------------
def _is_model_frame(data) -> bool:
    return isinstance(data, pd.DataFrame) and data.attrs.get("cytoresp_model_frame", False)


def align_frame(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Reindex a model frame on ``columns`` (missing ones become NaN), marked as aligned."""
    out = frame.reindex(columns=columns).astype(np.float64)
    out.attrs["cytoresp_model_frame"] = True
    return out


def format_drivers(
    contrib: pd.DataFrame, Z: pd.DataFrame, background: np.ndarray, k: int
) -> pd.Series:
    """Text of the k largest |contributions| per row: ``IL17F↑ -0.61; IL10↓ -0.22``.

    The arrow says whether the input is above (↑) or below (↓) its training mean; a
    missing input is marked ``?``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    values = contrib.to_numpy(dtype=np.float64)
    n, m = values.shape
    k = min(k, m)
    if k <= 0 or n == 0:
        return pd.Series([""] * n, index=contrib.index, dtype=object)
    # The k largest |contributions|, ties to the first column (a stable sort's order):
    # k passes of argmax, which returns the first maximum. NaN ranks last.
    mag = np.abs(values)
    mag[np.isnan(mag)] = -1.0
    rows = np.arange(n)
    order = np.empty((n, k), dtype=np.intp)
    for i in range(k):
        order[:, i] = pick = np.argmax(mag, axis=1)
        mag[rows, pick] = -np.inf
    z = Z.to_numpy(dtype=np.float64)
    dev = z[rows[:, None], order] - np.asarray(background, dtype=np.float64)[order]
    arrow = np.where(np.isnan(dev), 0, np.where(dev >= 0, 1, 2))
    # text from small tables of labels and numbers, joined by pyarrow (no per-row Python)
    labels = pa.array(
        [f"{name}{a} " for name in map(str, contrib.columns) for a in ("?", "↑", "↓")],
        pa.string(),
    )
    parts = []
    for i in range(k):
        label = pc.take(labels, pa.array(order[:, i] * 3 + arrow[:, i]))
        number = pa.array(_signed_hundredths(values[rows, order[:, i]]), pa.string())
        parts.append(pc.binary_join_element_wise(label, number, ""))
    text = parts[0] if k == 1 else pc.binary_join_element_wise(*parts, "; ")
    joined = text.to_pandas()
    joined.index = contrib.index
    return joined


def _signed_hundredths(x: np.ndarray) -> np.ndarray:
    """``"%+.2f" % v`` of every value, vectorised (object array of str)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape, dtype=object)
    finite = np.isfinite(x) & (np.abs(x) < 1e12)
    mag = np.abs(np.where(finite, x, 0.0)) * 100.0
    cents = np.rint(mag)
    # |v| * 100 is rounded once; near a half-way point that rounding could decide the last
    # digit, so those few cells (and non-finite ones) are formatted one by one.
    slow = ~finite | (np.abs(mag - np.floor(mag) - 0.5) < 1e-6)
    key = cents.astype(np.int64) * 2 + np.signbit(x).astype(np.int64)
    uniq, inverse = np.unique(key[~slow], return_inverse=True)
    texts = [
        ("-" if c & 1 else "+") + f"{(c >> 1) // 100}.{(c >> 1) % 100:02d}" for c in uniq.tolist()
    ]
    out[~slow] = np.asarray(texts, dtype=object)[inverse]
    for i in np.flatnonzero(slow).tolist():
        out[i] = f"{x[i]:+.2f}"
    return out


def row_warnings(
    frame: pd.DataFrame, columns: list[str], ranges: dict[str, tuple[float, float]]
) -> pd.Series:
    """``missing: IL4, IL22; outside training range: IL17F`` per row ('' when none)."""
    checked = [c for c in columns if c in ranges]
    n = len(frame)
    if not checked or n == 0:
        return pd.Series([""] * n, index=frame.index, dtype=object)
    vals = frame[checked].to_numpy(dtype=np.float64)
    lo = np.array([ranges[c][0] for c in checked], dtype=np.float64)
    hi = np.array([ranges[c][1] for c in checked], dtype=np.float64)
    miss = np.isnan(vals)
    with np.errstate(invalid="ignore"):
        outside = ~miss & (vals >= 0) & ((vals < lo) | (vals > hi))
    # One text per distinct pattern of flags (patterns are few, rows are many): the flags
    # of a row packed into 64-bit words, made unique, each pattern written once.
    flags = np.concatenate([miss, outside], axis=1)
    packed = np.packbits(flags, axis=1)
    words = np.zeros((n, -(-packed.shape[1] // 8) * 8), dtype=np.uint8)
    words[:, : packed.shape[1]] = packed
    keys = words.view(np.uint64)
    if keys.shape[1] == 1:
        _, first, inverse = np.unique(keys[:, 0], return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    k = len(checked)
    texts = []
    for row in first.tolist():
        gone = [c for c, b in zip(checked, flags[row, :k], strict=True) if b]
        out = [c for c, b in zip(checked, flags[row, k:], strict=True) if b]
        text = "missing: " + ", ".join(gone) if gone else ""
        if out:
            text += ("; " if text else "") + "outside training range: " + ", ".join(out)
        texts.append(text)
    return pd.Series(
        np.asarray(texts, dtype=object)[inverse.ravel()], index=frame.index, dtype=object
    )
