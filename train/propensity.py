"""How therapy assignment depends on the patients' covariates (propensity), at training time.

The two therapy heads are fitted on different patients: those who were given IFN-beta and
those who were given GA. In a randomised cohort the two groups differ only by chance. In an
observational cohort clinicians choose the therapy, often from disease activity (relapses,
EDSS, lesions), so the groups differ systematically, and each head must extrapolate to
patients unlike the ones it learnt from. This module measures that difference:

* **propensity**: P(therapy = IFN-beta | inputs), an L2 logistic regression on the log2
  cytokines (censoring-aware) and clinical covariates, cross-fitted (each patient's value
  comes from a model that did not see them), so its ROC AUC is honest: about 0.5 when
  assignment is random, higher when the inputs predict the therapy;
* **standardised mean differences** (SMD) of every input between the groups, before and
  after inverse-propensity weighting.

A warning is raised when the groups differ strongly (thresholds below, ``docs/methods.md``).
The same propensities give inverse-propensity weights (``TrainConfig(ipw=True)``,
``cytoresp train --ipw``): each head is then fitted on its patients reweighted to resemble
the whole cohort. Weighting adjusts for *measured* inputs only; nothing here can detect or
remove confounding by something that was not measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from cytoresp.errors import UsageError
from cytoresp.train.metrics import roc_auc

__all__ = [
    "AUC_WARN",
    "DEFAULT_CLIP",
    "IPW_ADVICE",
    "OVERLAP_WARN",
    "SMD_WARN",
    "PropensityReport",
    "assess_assignment",
    "assignment_metrics",
    "estimate_propensity",
    "ipw_weights",
    "standardised_mean_differences",
]

#: Cross-validated propensity ROC AUC from which the groups are called strongly different.
AUC_WARN = 0.65
#: |SMD| from which one input is called strongly imbalanced (Stuart 2010: "substantial").
SMD_WARN = 0.25
#: Family-wise error rate of the chance floors: a randomised cohort of the same size trips a
#: warning with probability at most about this much.
CHANCE_ALPHA = 0.01
#: Propensities are clipped to [clip, 1 - clip] before weighting.
DEFAULT_CLIP = 0.05
#: Share of patients with a propensity outside [clip, 1 - clip] that signals poor overlap.
OVERLAP_WARN = 0.10
#: Logged after the warnings of a training job without inverse-propensity weighting.
IPW_ADVICE = (
    "recommendations compare heads fitted on different kinds of patients; consider "
    "inverse-propensity weighting (--ipw) and read docs/methods.md on confounding"
)


def _assignment_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """log2 cytokines (censored values substituted) and clinical covariates, by input."""
    from cytoresp.features.builder import PanelFeatures

    features = PanelFeatures(ratios=[], axes=[]).fit(frame)
    return features.transform_inputs(frame)


def standardised_mean_differences(Z: pd.DataFrame, is_ifnb, weights=None) -> pd.Series:
    """SMD of every column between the IFN-beta (1) and GA (0) groups.

    ``(mean_ifnb - mean_ga) / sqrt((var_ifnb + var_ga) / 2)``, ignoring missing values.
    With ``weights`` the means are weighted; the denominator stays the unweighted pooled
    standard deviation, so weighted and unweighted SMDs are on the same scale (Austin 2009).

    Examples
    --------
    >>> Z = pd.DataFrame({"age": [30.0, 40.0, 50.0, 60.0]})
    >>> float(standardised_mean_differences(Z, [1, 1, 0, 0])["age"].round(3))
    -2.828
    """
    t = np.asarray(is_ifnb).astype(bool)
    X = Z.to_numpy(dtype=np.float64)
    w = np.ones(len(t)) if weights is None else np.asarray(weights, dtype=np.float64)
    out = {}
    for j, name in enumerate(Z.columns):
        x = X[:, j]
        ok = np.isfinite(x)
        a, b = ok & t, ok & ~t
        if a.sum() < 2 or b.sum() < 2:
            out[name] = np.nan
            continue
        sd = np.sqrt((x[a].var(ddof=1) + x[b].var(ddof=1)) / 2.0)
        diff = np.average(x[a], weights=w[a]) - np.average(x[b], weights=w[b])
        out[name] = diff / sd if sd > 1e-12 else 0.0
    return pd.Series(out, dtype=np.float64, name="smd")


def ipw_weights(propensity, is_ifnb, clip: float = DEFAULT_CLIP) -> np.ndarray:
    """Stabilised inverse-propensity weights, normalised to mean 1 within each therapy.

    ``w = P(T = t) / P(T = t | inputs)`` for a patient given therapy ``t``, with the
    propensity clipped to ``[clip, 1 - clip]`` so that no patient weighs more than
    ``1 / clip`` times the marginal share. The per-group normalisation keeps each head's
    effective sample size (and so its regularisation) comparable to the unweighted fit.

    Examples
    --------
    >>> ipw_weights([0.8, 0.5, 0.2, 0.5], [1, 1, 0, 0]).round(3).tolist()
    [0.769, 1.231, 0.769, 1.231]
    """
    if isinstance(clip, bool) or not 0 <= clip < 0.5:
        raise UsageError(f"the propensity clip must be in [0, 0.5), got {clip!r}")
    e = np.clip(np.asarray(propensity, dtype=np.float64), clip, 1.0 - clip)
    t = np.asarray(is_ifnb).astype(bool)
    if e.shape != t.shape:
        raise UsageError("propensity and is_ifnb must have the same length")
    share = t.mean()
    w = np.where(t, share / e, (1.0 - share) / (1.0 - e))
    for group in (t, ~t):
        if group.any():
            w[group] /= w[group].mean()
    return w


@dataclass
class PropensityReport:
    """How different the two therapy groups of a training cohort are.

    Attributes
    ----------
    n_ifnb, n_ga : int
    auc : float
        Cross-validated ROC AUC of the propensity model (0.5: inputs do not predict therapy).
    auc_chance : float
        AUC a randomised cohort of this size exceeds with probability ``CHANCE_ALPHA / 2``.
    smd, weighted_smd : Series
        Per input, IFN-beta minus GA, before and after inverse-propensity weighting.
    smd_chance : float
        |SMD| a randomised cohort of this size exceeds in any input with probability
        about ``CHANCE_ALPHA`` (Bonferroni over the inputs).
    propensity : Series
        Cross-fitted P(IFN-beta | inputs), index ``sample_id``.
    outside_overlap : float
        Share of patients with a propensity outside ``[clip, 1 - clip]``.
    clip : float
    warnings : list of str
        Empty when the groups are comparable.
    """

    n_ifnb: int
    n_ga: int
    auc: float
    auc_chance: float
    smd: pd.Series
    weighted_smd: pd.Series
    smd_chance: float
    propensity: pd.Series
    outside_overlap: float
    clip: float = DEFAULT_CLIP
    warnings: list[str] = field(default_factory=list)
    therapy: pd.Series | None = None

    def weights(self, clip: float | None = None) -> pd.Series:
        """Inverse-propensity weights (:func:`ipw_weights`) per patient, index ``sample_id``."""
        if self.therapy is None:
            raise UsageError("this report does not hold the therapy of each patient")
        w = ipw_weights(
            self.propensity.to_numpy(),
            (self.therapy == "ifnb").to_numpy(),
            self.clip if clip is None else clip,
        )
        return pd.Series(w, index=self.propensity.index, name="ipw")

    @property
    def imbalanced(self) -> list[str]:
        """Inputs with |SMD| above both ``SMD_WARN`` and the chance floor, largest first."""
        cut = max(SMD_WARN, self.smd_chance)
        flagged = self.smd[self.smd.abs() >= cut]
        return list(flagged.abs().sort_values(ascending=False).index)

    @property
    def max_abs_smd(self) -> float:
        return float(self.smd.abs().max()) if len(self.smd) else float("nan")

    @property
    def max_abs_weighted_smd(self) -> float:
        return float(self.weighted_smd.abs().max()) if len(self.weighted_smd) else float("nan")

    def balance_table(self) -> pd.DataFrame:
        """One row per input: ``smd``, ``weighted_smd``, ``flagged``."""
        table = pd.DataFrame({"smd": self.smd, "weighted_smd": self.weighted_smd})
        table["flagged"] = table.index.isin(self.imbalanced)
        return table.rename_axis("input")

    def flat_metrics(self) -> dict[str, float]:
        """Numbers for MLflow, prefixed ``assignment_`` (:func:`assignment_metrics`)."""
        return assignment_metrics(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (stored in the model's metadata)."""
        return {
            "n_ifnb": self.n_ifnb,
            "n_ga": self.n_ga,
            "propensity_auc": float(self.auc),
            "auc_chance": float(self.auc_chance),
            "smd": {k: float(v) for k, v in self.smd.items()},
            "weighted_smd": {k: float(v) for k, v in self.weighted_smd.items()},
            "smd_chance": float(self.smd_chance),
            "imbalanced": self.imbalanced,
            "outside_overlap": float(self.outside_overlap),
            "clip": float(self.clip),
            "thresholds": {"auc": AUC_WARN, "smd": SMD_WARN, "overlap": OVERLAP_WARN},
            "warnings": list(self.warnings),
        }


def estimate_propensity(
    frame: pd.DataFrame,
    therapy,
    *,
    n_splits: int = 5,
    seed: int = 0,
    C: float = 1.0,
    clip: float = DEFAULT_CLIP,
) -> PropensityReport:
    """Cross-fitted propensity of IFN-beta, balance diagnostics and warnings.

    Parameters
    ----------
    frame : DataFrame
        Model frame (index ``sample_id``; analytes in pg/mL, ``-L`` censored below ``L``,
        clinical covariates), one row per patient.
    therapy : array-like of str
        ``"ifnb"`` or ``"ga"`` per row.
    n_splits : int
        Cross-fitting folds.
    seed : int
        Seed of the folds.
    C : float
        Inverse L2 strength of the logistic regression on standardised inputs.
    clip : float
        Propensities are clipped to ``[clip, 1 - clip]`` for the weights.

    Returns
    -------
    PropensityReport

    Examples
    --------
    >>> from cytoresp.datasets import simulate_cohort
    >>> from cytoresp.panels.read import read_panel
    >>> panel = read_panel(simulate_cohort(600, seed=1, assignment="confounded",
    ...                                    confounding_strength=2.0).panel)
    >>> report = estimate_propensity(panel.to_model_frame(), panel.therapy)
    >>> report.auc > AUC_WARN, bool(report.warnings)
    (True, True)
    """
    t = np.asarray(therapy, dtype=object)
    if len(t) != len(frame):
        raise UsageError(f"therapy has {len(t)} values but the frame has {len(frame)} rows")
    bad = sorted({str(v) for v in t if v not in ("ifnb", "ga")})
    if bad:
        raise UsageError(f"therapy must be 'ifnb' or 'ga' on every row, got {', '.join(bad)}")
    is_ifnb = (t == "ifnb").astype(int)
    n1, n0 = int(is_ifnb.sum()), int(len(t) - is_ifnb.sum())
    if min(n1, n0) < n_splits:
        raise UsageError(
            f"the propensity model needs at least {n_splits} patients per therapy "
            f"(got {n1} ifnb, {n0} ga)"
        )
    Z = _assignment_inputs(frame)
    X = Z.to_numpy(dtype=np.float64)
    mean = np.nanmean(np.where(np.isfinite(X), X, np.nan), axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    X = np.where(np.isfinite(X), X, mean)
    sd = X.std(axis=0)
    X = (X - mean) / np.where(sd > 1e-12, sd, 1.0)
    prop = np.empty(len(t))
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    for train, test in folds.split(X, is_ifnb):
        lr = LogisticRegression(C=C, max_iter=2000).fit(X[train], is_ifnb[train])
        prop[test] = lr.predict_proba(X[test])[:, 1]
    auc = roc_auc(is_ifnb, prop)
    weights = ipw_weights(prop, is_ifnb, clip)
    smd = standardised_mean_differences(Z, is_ifnb)
    wsmd = standardised_mean_differences(Z, is_ifnb, weights)

    z_auc = NormalDist().inv_cdf(1 - CHANCE_ALPHA / 2)
    auc_chance = 0.5 + z_auc * np.sqrt((n1 + n0 + 1) / (12.0 * n1 * n0))
    k = max(1, int(smd.notna().sum()))
    smd_chance = NormalDist().inv_cdf(1 - CHANCE_ALPHA / (2 * k)) * np.sqrt(1 / n1 + 1 / n0)
    outside = float(np.mean((prop < clip) | (prop > 1 - clip)))
    report = PropensityReport(
        n_ifnb=n1,
        n_ga=n0,
        auc=float(auc),
        auc_chance=float(auc_chance),
        smd=smd,
        weighted_smd=wsmd,
        smd_chance=float(smd_chance),
        propensity=pd.Series(prop, index=frame.index, name="propensity_ifnb"),
        outside_overlap=outside,
        clip=float(clip),
        therapy=pd.Series(t, index=frame.index, name="therapy"),
    )
    report.warnings = _warnings(report)
    return report


def _warnings(r: PropensityReport) -> list[str]:
    out = []
    if r.auc >= max(AUC_WARN, r.auc_chance):
        out.append(
            f"therapy assignment is predictable from the inputs: cross-validated propensity "
            f"AUC {r.auc:.2f} (>= {AUC_WARN}); the training cohort is not randomised"
        )
    flagged = r.imbalanced
    if flagged:
        shown = ", ".join(f"{name} {r.smd[name]:+.2f}" for name in flagged[:5])
        more = f" and {len(flagged) - 5} more" if len(flagged) > 5 else ""
        out.append(
            f"the therapy groups differ strongly in {shown}{more} (standardised mean "
            f"difference, IFN-beta minus GA; threshold {max(SMD_WARN, r.smd_chance):.2f})"
        )
    if r.outside_overlap > OVERLAP_WARN:
        out.append(
            f"{100 * r.outside_overlap:.0f}% of patients have a propensity outside "
            f"[{r.clip}, {1 - r.clip}]: little overlap between the groups"
        )
    return out


def assess_assignment(panel, *, seed: int = 0, clip: float = DEFAULT_CLIP):
    """:func:`estimate_propensity` on a training panel's labelled patients of both therapies.

    Returns None when the panel does not hold at least 5 labelled patients of each therapy
    (nothing to compare).

    Examples
    --------
    >>> report = assess_assignment(panel)
    >>> bool(0 <= report.auc <= 1)
    True
    """
    if panel.therapy is None or panel.responder is None:
        return None
    keep = (panel.therapy.isin(["ifnb", "ga"]) & panel.responder.notna()).to_numpy()
    therapy = panel.therapy.to_numpy(dtype=object)[keep]
    if min((therapy == "ifnb").sum(), (therapy == "ga").sum()) < 5:
        return None
    frame = panel.to_model_frame().loc[keep]
    return estimate_propensity(frame, therapy, seed=seed, clip=clip)


def assignment_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """MLflow metrics from :meth:`PropensityReport.to_dict` (as stored in model metadata).

    Examples
    --------
    >>> assignment_metrics({"propensity_auc": 0.5, "smd": {"age": 0.1}, "weighted_smd":
    ...     {"age": 0.0}, "imbalanced": [], "outside_overlap": 0.0, "warnings": []})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'assignment_propensity_auc': 0.5, 'assignment_max_abs_smd': 0.1,
     'assignment_max_abs_smd_weighted': 0.0, 'assignment_n_imbalanced': 0.0,
     'assignment_outside_overlap': 0.0, 'assignment_warning': 0.0}
    """

    def max_abs(d: dict[str, float]) -> float:
        vals = [abs(v) for v in d.values() if np.isfinite(v)]
        return float(max(vals)) if vals else float("nan")

    return {
        "assignment_propensity_auc": float(summary["propensity_auc"]),
        "assignment_max_abs_smd": max_abs(summary["smd"]),
        "assignment_max_abs_smd_weighted": max_abs(summary["weighted_smd"]),
        "assignment_n_imbalanced": float(len(summary["imbalanced"])),
        "assignment_outside_overlap": float(summary["outside_overlap"]),
        "assignment_warning": float(bool(summary["warnings"])),
    }
