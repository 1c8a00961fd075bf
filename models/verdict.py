"""Did a model beat its baselines in cross-validation? The one rule, and what it says.

After cross-validation (:mod:`cytoresp.train.cv`), every therapy head is compared with
the baselines scored on the same outer folds: a logistic regression on the log
cytokines (``logistic``) and the training prevalence for everyone (``prevalence``). The
comparison is paired: the ROC AUC difference, model minus baseline, on the same
patients' out-of-fold predictions, with a 95% patient-level bootstrap interval
(:func:`cytoresp.train.metrics.paired_difference`).

**The rule.** A head *clearly beats* a baseline when the lower bound of that interval is
above 0. Otherwise (the interval reaches 0 or below) it did not, and training warns, the
MLflow run is tagged, the model stores the verdict and the patient report says so above
the probability. Without an interval (``n_boot = 0``) the comparison is *untested*, which
is said as such, never taken as a pass.

The verdict is stored in the model's metadata (``baseline_verdict``); models saved before
it existed get it from their stored cross-validated metrics (the same numbers), and
models without those are "untested".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "JUDGED_BASELINES",
    "RULE",
    "BaselineComparison",
    "compare_with_baselines",
    "baseline_verdicts",
    "verdict_to_dict",
    "caution",
    "status",
    "summary_line",
    "lost_baselines",
]

#: The baselines a head must clearly beat, in the order the messages name them.
JUDGED_BASELINES = ("logistic", "prevalence")

#: The rule in words (stored with every verdict, printed in the model card).
RULE = (
    "a head clearly beats a baseline when the lower bound of the paired 95% patient "
    "bootstrap interval of the cross-validated ROC AUC difference (model minus baseline, "
    "same out-of-fold patients) is above 0"
)

#: Baselines in words.
BASELINE_NAMES = {
    "logistic": "a plain logistic regression",
    "prevalence": "a constant prediction (the training prevalence for everyone)",
    "clinical": "a logistic regression on the clinical covariates alone",
}


@dataclass(frozen=True)
class BaselineComparison:
    """The paired cross-validated ROC AUC difference of a head and one baseline.

    Parameters
    ----------
    baseline : str
        ``"logistic"``, ``"prevalence"`` (or another baseline of the run).
    difference, lower, upper : float
        Model minus baseline, and its 95% interval (NaN bounds: not computed).

    Examples
    --------
    >>> BaselineComparison("logistic", 0.04, 0.01, 0.07).beats
    True
    >>> BaselineComparison("logistic", 0.0, -0.13, 0.13).beats
    False
    >>> BaselineComparison("logistic", 0.05, float("nan"), float("nan")).beats is None
    True
    """

    baseline: str
    difference: float
    lower: float
    upper: float

    @property
    def beats(self) -> bool | None:
        """True when clearly above (:data:`RULE`), False when not, None when untested."""
        if not math.isfinite(self.lower):
            return None
        return bool(self.lower > 0)

    def text(self) -> str:
        """The difference and its interval, e.g. ``+0.000 (95% CI -0.126 to 0.128)``."""
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            return f"{self.difference:+.3f} (no interval)"
        return f"{self.difference:+.3f} (95% CI {self.lower:+.3f} to {self.upper:+.3f})"


def compare_with_baselines(
    flat: Mapping[str, float], therapy: str
) -> dict[str, BaselineComparison]:
    """Every baseline comparison in a head's flat cross-validated metrics.

    Parameters
    ----------
    flat : mapping
        ``TherapyReport.flat_metrics()`` (stored as ``metadata["cv_metrics"][therapy]``):
        keys ``{therapy}_auc_diff_vs_{baseline}`` with ``_lower`` / ``_upper``.
    therapy : str

    Returns
    -------
    dict of str to BaselineComparison
        One per baseline found, judged baselines first.

    Examples
    --------
    >>> flat = {"ga_auc_diff_vs_logistic": 0.02, "ga_auc_diff_vs_logistic_lower": -0.03,
    ...         "ga_auc_diff_vs_logistic_upper": 0.07}
    >>> compare_with_baselines(flat, "ga")["logistic"].beats
    False
    """
    prefix = f"{therapy}_auc_diff_vs_"
    found = {}
    for key, value in flat.items():
        if not key.startswith(prefix) or key.endswith(("_lower", "_upper")):
            continue
        base = key[len(prefix):]
        found[base] = BaselineComparison(
            base,
            float(value),
            float(flat.get(f"{key}_lower", math.nan)),
            float(flat.get(f"{key}_upper", math.nan)),
        )
    order = [b for b in JUDGED_BASELINES if b in found] + sorted(
        b for b in found if b not in JUDGED_BASELINES
    )
    return {b: found[b] for b in order}


def verdict_to_dict(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The verdict as stored in a model's metadata (``metadata["baseline_verdict"]``).

    Built from ``metadata["cv_metrics"]``; one entry per therapy with every baseline's
    difference, interval and ``beats`` (true, false or null for untested), and
    ``beats_baselines`` over the judged baselines.

    Examples
    --------
    >>> meta = {"cv_metrics": {"ga": {"ga_auc_diff_vs_prevalence": 0.2,
    ...     "ga_auc_diff_vs_prevalence_lower": 0.1, "ga_auc_diff_vs_prevalence_upper": 0.3}}}
    >>> verdict_to_dict(meta)["therapies"]["ga"]["beats_baselines"]
    True
    """
    out: dict[str, Any] = {"rule": RULE, "judged": list(JUDGED_BASELINES), "therapies": {}}
    for therapy, flat in (metadata.get("cv_metrics") or {}).items():
        comparisons = compare_with_baselines(flat or {}, therapy)
        out["therapies"][therapy] = {
            "baselines": {
                b: {"difference": c.difference, "lower": c.lower, "upper": c.upper,
                    "beats": c.beats}
                for b, c in comparisons.items()
            },
            "beats_baselines": _overall(comparisons),
        }
    return out


def _overall(comparisons: Mapping[str, BaselineComparison]) -> bool | None:
    judged = [comparisons[b].beats for b in JUDGED_BASELINES if b in comparisons]
    if any(b is False for b in judged):
        return False
    if not judged or any(b is None for b in judged):
        return None
    return True


def baseline_verdicts(metadata: Mapping[str, Any]) -> dict[str, dict[str, BaselineComparison]]:
    """Per therapy, its baseline comparisons: the stored verdict, else from the metrics.

    Examples
    --------
    >>> baseline_verdicts({})
    {}
    """
    stored = metadata.get("baseline_verdict")
    if not stored:
        stored = verdict_to_dict(metadata)
    out = {}
    for therapy, entry in (stored.get("therapies") or {}).items():
        out[therapy] = {
            b: BaselineComparison(
                b, _num(c.get("difference")), _num(c.get("lower")), _num(c.get("upper"))
            )
            for b, c in (entry.get("baselines") or {}).items()
        }
    return out


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)


def status(comparisons: Mapping[str, BaselineComparison]) -> str:
    """``"true"`` (clearly beats every judged baseline), ``"false"`` or ``"untested"``.

    The value of the MLflow tag ``cytoresp.beats_baselines.<therapy>``.

    Examples
    --------
    >>> status({"logistic": BaselineComparison("logistic", 0.0, -0.1, 0.1)})
    'false'
    >>> status({})
    'untested'
    """
    overall = _overall(comparisons)
    return "untested" if overall is None else str(overall).lower()


def caution(comparisons: Mapping[str, BaselineComparison]) -> str | None:
    """The sentence shown above a head's probability when it did not beat a baseline.

    None when it clearly beat every judged baseline. When the comparison was not tested
    (no interval, or no baselines stored) it says that instead.

    Examples
    --------
    >>> caution({"logistic": BaselineComparison("logistic", 0.0, -0.13, 0.13),
    ...          "prevalence": BaselineComparison("prevalence", 0.17, 0.02, 0.35)})
    'this model did not beat a plain logistic regression in cross-validation; treat its
    numbers with caution'
    >>> caution({"logistic": BaselineComparison("logistic", 0.1, 0.05, 0.15),
    ...          "prevalence": BaselineComparison("prevalence", 0.3, 0.2, 0.4)}) is None
    True
    """
    lost = lost_baselines(comparisons)
    if lost:
        names = " nor ".join(BASELINE_NAMES[b] for b in lost)
        return (f"this model did not beat {names} in cross-validation; "
                "treat its numbers with caution")
    if _overall(comparisons) is None:
        return ("this model was not tested against a plain logistic regression and a "
                "constant prediction in cross-validation (no bootstrap intervals); treat "
                "its numbers with caution")
    return None


def lost_baselines(comparisons: Mapping[str, BaselineComparison]) -> list[str]:
    """The judged baselines a head did not clearly beat, the graver loss first.

    Examples
    --------
    >>> lost_baselines({"logistic": BaselineComparison("logistic", 0.0, -0.1, 0.1),
    ...                 "prevalence": BaselineComparison("prevalence", 0.1, -0.01, 0.2)})
    ['prevalence', 'logistic']
    """
    lost = [b for b in JUDGED_BASELINES if b in comparisons and comparisons[b].beats is False]
    # "did not beat a constant prediction" is the graver finding: say it first
    return sorted(lost, key=lambda b: {"prevalence": 0, "logistic": 1}.get(b, 2))


def summary_line(therapy: str, comparisons: Mapping[str, BaselineComparison]) -> str:
    """One line for the training summary: the verdict of one head, with the numbers.

    Examples
    --------
    >>> print(summary_line("ga", {
    ...     "logistic": BaselineComparison("logistic", 0.0, -0.126, 0.128),
    ...     "prevalence": BaselineComparison("prevalence", 0.17, 0.02, 0.35)}))
    WARNING ga: this model did not beat a plain logistic regression in cross-validation
    (ROC AUC difference +0.000 (95% CI -0.126 to +0.128)); treat its numbers with caution
    >>> print(summary_line("ga", {
    ...     "logistic": BaselineComparison("logistic", 0.06, 0.02, 0.10),
    ...     "prevalence": BaselineComparison("prevalence", 0.3, 0.2, 0.4)}))
    ga: clearly above the logistic and prevalence baselines (ROC AUC difference +0.060
    (95% CI +0.020 to +0.100) and +0.300 (95% CI +0.200 to +0.400))
    """
    s = status(comparisons)
    judged = [b for b in JUDGED_BASELINES if b in comparisons]
    if s == "false":
        lost = lost_baselines(comparisons)
        names = " nor ".join(BASELINE_NAMES[b] for b in lost)
        numbers = "; ".join(
            (f"vs {b}: " if len(lost) > 1 else "") + comparisons[b].text() for b in lost
        )
        return (f"WARNING {therapy}: this model did not beat {names} in cross-validation "
                f"(ROC AUC difference {numbers}); treat its numbers with caution")
    if s == "true":
        return (f"{therapy}: clearly above the {' and '.join(judged)} baselines (ROC AUC "
                f"difference {' and '.join(comparisons[b].text() for b in judged)})")
    return (f"note {therapy}: not tested against the logistic and prevalence baselines "
            "(no bootstrap interval: n_boot = 0, or no baseline was scored)")
