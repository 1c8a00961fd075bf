"""ResponseModel: one calibrated head per therapy, with cytokine-level explanations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from cytoresp.errors import UsageError
from cytoresp.features.panel import THERAPIES, Panel
from cytoresp.models.attribution import distribute_to_inputs

#: Probability difference below which the two therapies are reported as ``either``
#: when no interval is available.
DEFAULT_EQUIVALENCE_MARGIN = 0.05


@dataclass
class TherapyHead:
    """A fitted head for one therapy.

    Attributes
    ----------
    therapy : str
        ``"ifnb"`` or ``"ga"``.
    pipeline : Pipeline
        ``("features", PanelFeatures) -> ("model", LinearBoostedClassifier)``.
    input_columns : list of str
        Columns of the model frame the pipeline was fitted on, in order.
    background : ndarray
        Mean of each explanation input (log2 cytokine, covariate) on the training rows.
    calibration : tuple of float
        ``(intercept, slope)`` of the logistic recalibration applied to the log-odds.
    threshold : float
        Decision threshold on the calibrated probability, chosen inside cross-validation.
    """

    therapy: str
    pipeline: Pipeline
    input_columns: list[str]
    background: np.ndarray
    calibration: tuple[float, float] = (0.0, 1.0)
    threshold: float = 0.5

    @property
    def features(self):
        return self.pipeline.named_steps["features"]

    @property
    def model(self):
        return self.pipeline.named_steps["model"]

    def calibrated_margin(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated log-odds of response for rows of a model frame."""
        a, b = self.calibration
        return a + b * self.pipeline.decision_function(frame[self.input_columns])

    def cytokine_contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """Base value and input-level contributions, in calibrated log-odds.

        ``base + contributions.sum(axis=1)`` equals :meth:`calibrated_margin` row by row.
        """
        X = frame[self.input_columns]
        feats = self.features.transform(X)
        feat_arr = np.asarray(feats, dtype=np.float64)
        base, phi = self.model.contributions(feats)
        a, b = self.calibration
        base, phi = a + b * base, b * phi
        Z = self.features.transform_inputs(X)
        inputs = list(self.features.input_names_)
        z_arr = np.asarray(Z, dtype=np.float64)
        W = self.features.input_weights_.reindex(columns=inputs).to_numpy(dtype=np.float64)
        names = list(self.features.get_feature_names_out())
        index_of = {name: i for i, name in enumerate(inputs)}
        srcs = self.features.feature_sources_
        sources = [[index_of[s] for s in srcs[name]] for name in names]
        nonlinear = {
            names.index(f): index_of[srcs[f][0]]
            for f in getattr(self.features, "nonlinear_features_", [])
        }
        contrib = distribute_to_inputs(phi, feat_arr, z_arr, self.background, W, sources, nonlinear)
        return base, pd.DataFrame(contrib, index=frame.index, columns=inputs)


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

    Examples
    --------
    >>> from cytoresp.datasets import simulate_cohort
    >>> from cytoresp.train import fit_response_model
    >>> model = fit_response_model(simulate_cohort(300, seed=1).panel)  # doctest: +SKIP
    >>> model.predict_proba(simulate_cohort(5, seed=2).panel)  # doctest: +SKIP
    """

    heads: dict[str, TherapyHead]
    training_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def therapies(self) -> list[str]:
        """Therapies with a fitted head, in canonical order."""
        return [t for t in THERAPIES if t in self.heads]

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
        lacks are filled with NaN (reported by :meth:`row_warnings`).
        """
        if not isinstance(data, Panel):
            from cytoresp.features.reader import read_panel

            data = read_panel(data)
        return align_frame(data.to_model_frame(), self.input_columns)

    def _therapies(self, therapy: str | Iterable[str] | None) -> list[str]:
        if therapy is None:
            return self.therapies
        wanted = [therapy] if isinstance(therapy, str) else list(therapy)
        unknown = [t for t in wanted if t not in self.heads]
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

    def predict_proba_frame(self, frame: pd.DataFrame, therapy: str | None = None) -> pd.DataFrame:
        """:meth:`predict_proba` on an already aligned model frame."""
        out = {}
        for t in self._therapies(therapy):
            out[f"p_response_{t}"] = _sigmoid(self.heads[t].calibrated_margin(frame))
        return pd.DataFrame(out, index=frame.index)

    def explain(self, data, therapy: str | None = None) -> pd.DataFrame:
        """Cytokine-level explanation table (long format, DESIGN.md).

        Returns
        -------
        DataFrame
            Columns ``sample_id``, ``therapy``, ``feature`` (a cytokine id or a clinical
            covariate), ``contribution`` and ``base_value`` (log-odds). For each sample and
            therapy, ``base_value + sum(contribution)`` equals the model's log-odds.
        """
        frame = data if _is_model_frame(data) else self.model_frame(data)
        parts = []
        for t in self._therapies(therapy):
            base, contrib = self.heads[t].cytokine_contributions(frame)
            long = contrib.rename_axis(index="sample_id", columns="feature").stack()
            long = long.rename("contribution").reset_index()
            long.insert(1, "therapy", t)
            long["base_value"] = np.repeat(base, contrib.shape[1])
            parts.append(long)
        return pd.concat(parts, ignore_index=True)

    def top_drivers(self, frame: pd.DataFrame, therapy: str, k: int = 3) -> pd.Series:
        """The ``k`` largest signed contributions per row as text, e.g. ``IL17F↑ -0.61``."""
        _, contrib = self.heads[therapy].cytokine_contributions(frame)
        Z = self.heads[therapy].features.transform_inputs(frame[self.heads[therapy].input_columns])
        return format_drivers(contrib, Z, self.heads[therapy].background, k)

    def recommend(self, data, margin: float = DEFAULT_EQUIVALENCE_MARGIN) -> pd.DataFrame:
        """The therapy with the higher probability of response, or ``either``.

        Needs both heads. ``either`` when the probabilities differ by less than
        ``margin``.
        """
        if len(self.therapies) < 2:
            raise UsageError(
                "a recommendation needs a model with both therapies (train --therapy all)"
            )
        frame = data if _is_model_frame(data) else self.model_frame(data)
        return self.recommend_frame(frame, margin)

    def recommend_frame(
        self, frame: pd.DataFrame, margin: float = DEFAULT_EQUIVALENCE_MARGIN
    ) -> pd.DataFrame:
        """:meth:`recommend` on an already aligned model frame (the batch scorer's hook)."""
        return recommend_from_proba(self.predict_proba_frame(frame), margin)

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
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _is_model_frame(data) -> bool:
    return isinstance(data, pd.DataFrame) and data.attrs.get("cytoresp_model_frame", False)


def align_frame(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Reindex a model frame on ``columns`` (missing ones become NaN), marked as aligned."""
    out = frame.reindex(columns=columns).astype(np.float64)
    out.attrs["cytoresp_model_frame"] = True
    return out


def recommend_from_proba(proba: pd.DataFrame, margin: float) -> pd.DataFrame:
    """Recommendation columns from ``p_response_ifnb`` and ``p_response_ga``."""
    diff = proba["p_response_ifnb"] - proba["p_response_ga"]
    rec = np.where(diff >= margin, "ifnb", np.where(diff <= -margin, "ga", "either"))
    out = proba.copy()
    out["difference_ifnb_minus_ga"] = diff
    out["recommended_therapy"] = rec
    return out


def format_drivers(
    contrib: pd.DataFrame, Z: pd.DataFrame, background: np.ndarray, k: int
) -> pd.Series:
    """Text of the k largest |contributions| per row: ``IL17F↑ -0.61; IL10↓ -0.22``.

    The arrow says whether the input is above (↑) or below (↓) its training mean; a
    missing input is marked ``?``.
    """
    values = contrib.to_numpy()
    k = min(k, values.shape[1])
    if k <= 0 or values.shape[0] == 0:
        return pd.Series([""] * len(contrib), index=contrib.index, dtype=object)
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
    names = np.asarray(contrib.columns, dtype=object)
    z = Z.to_numpy(dtype=np.float64)
    rows = np.arange(values.shape[0])[:, None]
    dev = z[rows, order] - background[order]
    arrows = np.where(np.isnan(dev), "?", np.where(dev >= 0, "↑", "↓"))
    picked = values[rows, order]
    parts = []
    for i in range(k):
        text = pd.Series(names[order[:, i]]).str.cat(
            [pd.Series(arrows[:, i]), pd.Series(np.char.mod(" %+.2f", picked[:, i]))]
        )
        parts.append(text)
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.str.cat(part, sep="; ")
    joined.index = contrib.index
    return joined


def row_warnings(
    frame: pd.DataFrame, columns: list[str], ranges: dict[str, tuple[float, float]]
) -> pd.Series:
    """``missing: IL4, IL22; outside training range: IL17F`` per row ('' when none)."""
    n = len(frame)
    missing = pd.Series([""] * n, index=frame.index, dtype=object)
    outside = pd.Series([""] * n, index=frame.index, dtype=object)
    for col in columns:
        if col not in ranges:
            continue
        vals = frame[col].to_numpy(dtype=np.float64)
        lo, hi = ranges[col]
        mag = np.abs(vals)
        miss = np.isnan(vals)
        out = ~miss & ((vals >= 0) & ((mag < lo) | (mag > hi)))
        if miss.any():
            missing = missing.where(~miss, missing + np.where(missing == "", "", ", ") + col)
        if out.any():
            outside = outside.where(~out, outside + np.where(outside == "", "", ", ") + col)
    text = np.where(missing != "", "missing: " + missing, "")
    text = pd.Series(text, index=frame.index, dtype=object)
    sep = np.where((text != "") & (outside != ""), "; ", "")
    text = text + sep + np.where(outside != "", "outside training range: " + outside, "")
    return text
