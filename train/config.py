"""Training configuration: one dataclass, readable from a JSON or TOML file."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cytoresp.errors import UsageError
from cytoresp.panels.declared import DeclaredColumn, declared_columns
from cytoresp.panels.therapies import (
    MIN_PATIENTS_PER_HEAD,
    declared_therapies,
    resolve_therapy,
    unknown_therapy_message,
)


@dataclass
class TrainConfig:
    """Everything that decides how a training job runs.

    Parameters
    ----------
    n_splits : int
        Outer cross-validation folds.
    n_repeats : int
        Repetitions of the outer cross-validation with different shuffles.
    inner_splits : int
        Inner folds (inside each outer training part) used to fit the calibration and
        choose the threshold, so the outer test fold never informs either.
    seed : int
        Seed of the fold shuffles and of the models.
    threshold_method : {"youden", "sensitivity"}
        How the decision threshold is chosen (inside the cross-validation).
    target_sensitivity : float or None
        Required with ``threshold_method="sensitivity"``.
    n_boot : int
        Bootstrap resamples for the 95% intervals.
    n_jobs : int
        Outer folds fitted in parallel (processes).
    model : dict
        The classifier of each head: ``classifier`` names it (``"linear_boosted"``:
        :class:`cytoresp.models.estimator.LinearBoostedClassifier`; ``"superlearner"``:
        :class:`cytoresp.models.superlearner.SuperLearnerClassifier`; default
        :data:`cytoresp.models.default.DEFAULT_CLASSIFIER`), the other keys are its
        parameters.
    features : dict
        Parameters of :class:`cytoresp.features.builder.PanelFeatures`.
    n_ensemble : int
        Bootstrap refits per head (IFN-β and GA) for the spread of each probability in the
        patient report only; it takes no part in the recommendation, and the spread is not
        a confidence interval (``docs/methods.md``). 0 (the default) fits none.
    recommend_level : float
        Level of the interval on the calibrated difference between therapies (0.90):
        ``either`` when it includes zero (:mod:`cytoresp.models.choice`).
    choice_alpha : float
        Level of the cohort gate: the one-sided BLP test that the predicted difference
        between therapies separates who benefits from which (0.05; Holm-adjusted over
        pairs of therapies). When it fails, every recommendation is ``either``.
    ipw : bool
        Fit the heads with inverse-propensity weights (``cytoresp train --ipw``).
    ipw_clip : float
        Propensities are clipped to ``[ipw_clip, 1 - ipw_clip]`` before weighting.
    plate_normalisation : bool
        Per-plate median normalisation of the log2 cytokines, fitted inside every fold
        (``cytoresp train --plate-normalise``; ``docs/methods.md``). The training panel
        and every panel scored later need a ``plate`` column. The minimum number of
        samples behind a plate median is ``features = {"plate_min_samples": 8}``.
    therapies : dict
        Therapies declared beside the registry (``docs/therapies.md``): id -> display name,
        or id -> ``{"name": ..., "synonyms": [...]}``. The model keeps them.
    min_patients_per_head : int
        ``--therapy all`` fits a head for every therapy with at least this many patients of
        known outcome (:data:`~cytoresp.panels.therapies.MIN_PATIENTS_PER_HEAD`); the
        others are skipped with a message.
    outcome_name : str or None
        The outcome in words (``"NEDA-3 at 2 years"``), used by the model, the MLflow run,
        the reports and the model summary. Default: ``"response"``, or the ``--label``
        column's name, or the ``--label-from`` definition.
    label, positive : str or None
        The outcome column and its positive value (``cytoresp train --label COLUMN
        --positive VALUE``): any two-level column instead of ``responder``.
    therapy_if_absent : str or None
        The therapy of every patient when the file has no therapy column (a cohort on one
        therapy, or an outcome that is not a treatment response: ``"untreated"``).
    strict : bool
        Refuse training data with an ignored column or a guessed role (``--strict``).
    covariates, measurements : dict
        Declared columns beside the registered analytes and the clinical covariates
        (:mod:`cytoresp.panels.declared`, ``docs/data-format.md``): covariates
        ``{"bmi": "numeric", "smoking": {"kind": "categorical", "levels": [...]}}``;
        measurements ``{"m00_*": "log", "NfL": "concentration"}`` (header or glob
        pattern -> scale ``concentration``, ``log`` or ``numeric``).
    sample_id : str or None
        The column holding the sample id, when its header is not one cytoresp knows.
    select_rows : dict
        Train on the rows whose columns hold these values only (``{"Timepoint": "T0"}``).
    explain_background : int
        Training rows (a random sample, all if fewer) stored with each head as the
        background its contributions are Shapley values against
        (``docs/explanations.md``).
    landmarks : list of int
        Landmark months (``cytoresp train --landmarks 0,3,6``; ``docs/methods.md``,
        "On-treatment panels"): beside the baseline head (landmark 0, exactly the head
        trained without landmarks), one head per therapy and later landmark ``L``, on the
        patients with an on-treatment sample in that landmark's window, with the baseline
        inputs plus each analyte's change since baseline. Empty (the default): baseline
        heads only; 0 is added when missing.
    landmark_window : float or None
        Tolerance in months after a landmark: landmark ``L`` uses the latest on-treatment
        sample with ``0 < month <= L + landmark_window``. None: the documented default of
        :func:`cytoresp.features.landmark.landmark_table`.
    alert_sensitivity : float
        The share of non-responders that the early non-response alert of a landmark head
        must flag: its threshold on the on-treatment probability of response is chosen on
        out-of-fold predictions (inside the cross-validation for the reported figures) so
        that this share of the training non-responders fall at or below it (0.8).

    Examples
    --------
    >>> TrainConfig(n_repeats=1).n_splits
    5
    """

    n_splits: int = 5
    n_repeats: int = 3
    inner_splits: int = 3
    seed: int = 0
    threshold_method: str = "youden"
    target_sensitivity: float | None = None
    n_boot: int = 1000
    n_jobs: int = 2
    model: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    #: Therapy choice (cytoresp.models.choice, cytoresp.train.propensity): bootstrap refits
    #: per head for the report's spread (0: none), the interval's level, the gate's level,
    #: inverse-propensity weighting of the heads, and the propensity clip.
    n_ensemble: int = 0
    recommend_level: float = 0.90
    choice_alpha: float = 0.05
    ipw: bool = False
    ipw_clip: float = 0.05
    plate_normalisation: bool = False
    #: Real cohorts (docs/therapies.md, docs/outcomes.md): declared therapies, the minimum
    #: size of a head, the outcome column and its name in words.
    therapies: dict[str, Any] = field(default_factory=dict)
    min_patients_per_head: int = MIN_PATIENTS_PER_HEAD
    outcome_name: str | None = None
    label: str | None = None
    positive: str | None = None
    therapy_if_absent: str | None = None
    strict: bool = False
    covariates: dict[str, Any] = field(default_factory=dict)
    measurements: dict[str, Any] = field(default_factory=dict)
    sample_id: str | None = None
    select_rows: dict[str, Any] = field(default_factory=dict)
    explain_background: int = 100
    #: On-treatment panels (issue 17): landmark months, the window after each, the
    #: sensitivity of the early non-response alert. Left out of to_dict() when there are
    #: no landmarks, so a baseline-only model's stored configuration is unchanged.
    landmarks: list[int] = field(default_factory=list)
    landmark_window: float | None = None
    alert_sensitivity: float = 0.8

    def __post_init__(self) -> None:
        size = self.explain_background
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise UsageError(f"explain_background must be an integer >= 1, got {size!r}")
        for key in ("covariates", "measurements", "select_rows"):
            if not isinstance(getattr(self, key), dict):
                raise UsageError(f"{key} must be a table (name = value), got "
                                 f"{getattr(self, key)!r}")
        try:
            declared_columns(self.covariates, self.measurements, self.sample_id)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if not isinstance(self.strict, bool):
            raise UsageError(f"strict must be true or false, got {self.strict!r}")
        if not isinstance(self.therapies, dict):
            raise UsageError(f"therapies must be a table of id = name, got {self.therapies!r}")
        try:
            declared = declared_therapies(self.therapies)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        m = self.min_patients_per_head
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise UsageError(f"min_patients_per_head must be an integer >= 1, got {m!r}")
        for key in ("outcome_name", "label", "positive", "therapy_if_absent", "sample_id"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise UsageError(f"{key} must be a non-empty text, got {value!r}")
        if self.positive is not None and self.label is None:
            raise UsageError("positive needs label (the column whose value it names)")
        if self.therapy_if_absent is not None:
            tid = resolve_therapy(self.therapy_if_absent, declared)
            if tid is None:
                message = unknown_therapy_message(self.therapy_if_absent, declared)
                raise UsageError(f"therapy_if_absent: {message}")
            self.therapy_if_absent = tid
        n_ens = self.n_ensemble
        if isinstance(n_ens, bool) or not isinstance(n_ens, int) or n_ens < 0:
            raise UsageError(f"n_ensemble must be an integer >= 0, got {self.n_ensemble!r}")
        if not isinstance(self.model, dict):
            raise UsageError(f"model must be a table of parameters, got {self.model!r}")
        from cytoresp.models.default import make_classifier

        make_classifier(self.model)  # a known classifier and its parameters
        if not 0 < self.recommend_level < 1:
            raise UsageError(f"recommend_level must be in (0, 1), got {self.recommend_level!r}")
        if not 0 < self.choice_alpha < 0.5:
            raise UsageError(f"choice_alpha must be in (0, 0.5), got {self.choice_alpha!r}")
        if not isinstance(self.ipw, bool):
            raise UsageError(f"ipw must be true or false, got {self.ipw!r}")
        if not isinstance(self.plate_normalisation, bool):
            raise UsageError(
                f"plate_normalisation must be true or false, got {self.plate_normalisation!r}"
            )
        if isinstance(self.features, dict) and "plate_normalisation" in self.features:
            raise UsageError(
                "set plate_normalisation at the top level of the config (or use "
                "--plate-normalise), not under 'features'"
            )
        if not 0 <= self.ipw_clip < 0.5:
            raise UsageError(f"ipw_clip must be in [0, 0.5), got {self.ipw_clip!r}")
        if self.n_splits < 2:
            raise UsageError(f"n_splits must be >= 2, got {self.n_splits}")
        if self.n_repeats < 1:
            raise UsageError(f"n_repeats must be >= 1, got {self.n_repeats}")
        if self.inner_splits < 2:
            raise UsageError(f"inner_splits must be >= 2, got {self.inner_splits}")
        if self.threshold_method not in ("youden", "sensitivity"):
            raise UsageError(
                f"threshold_method must be 'youden' or 'sensitivity', got {self.threshold_method!r}"
            )
        if self.threshold_method == "sensitivity" and not (
            self.target_sensitivity is not None and 0 < self.target_sensitivity < 1
        ):
            raise UsageError("threshold_method 'sensitivity' needs target_sensitivity in (0, 1)")
        if self.n_boot < 0:
            raise UsageError(f"n_boot must be >= 0, got {self.n_boot}")
        self.landmarks = check_landmarks(self.landmarks)
        w = self.landmark_window
        if w is not None and (isinstance(w, bool) or not isinstance(w, int | float)
                              or not 0 <= w < 12):
            raise UsageError(f"landmark_window must be a number of months in [0, 12), got {w!r}")
        s = self.alert_sensitivity
        if isinstance(s, bool) or not isinstance(s, int | float) or not 0 < s < 1:
            raise UsageError(f"alert_sensitivity must be in (0, 1), got {s!r}")

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """Read a JSON (``.json``) or TOML (``.toml``) file; unknown keys are an error."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"config file {path} is not UTF-8 text (JSON or TOML)") from None
        try:
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(
                f"config file {path} is not valid {path.suffix[1:] or 'JSON'}: {exc}"
            ) from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(
                f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.landmarks:  # a baseline-only config reads as it did before landmarks
            for key in ("landmarks", "landmark_window", "alert_sensitivity"):
                del out[key]
        return out

    @property
    def declared(self) -> dict[str, Any]:
        """The declared therapies as :class:`~cytoresp.panels.therapies.Therapy` objects."""
        return declared_therapies(self.therapies)

    @property
    def columns(self) -> tuple[DeclaredColumn, ...]:
        """The declared covariates, measurements and sample id column."""
        return declared_columns(self.covariates, self.measurements, self.sample_id)

    def declaration(self) -> dict[str, Any]:
        """What a model keeps of the config to read files the same way later."""
        return {"covariates": dict(self.covariates), "measurements": dict(self.measurements),
                "sample_id": self.sample_id}


def check_landmarks(value: Any) -> list[int]:
    """Landmark months as a sorted list of distinct integers, 0 included (or empty).

    Accepts a list of integers or a text such as ``"0,3,6"`` (the command line's).

    Examples
    --------
    >>> check_landmarks("3,6")
    [0, 3, 6]
    >>> check_landmarks([])
    []
    """
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            value = [int(p) for p in parts]
        except ValueError:
            raise UsageError(
                f"landmarks are whole months separated by commas (e.g. 0,3,6), got {value!r}"
            ) from None
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise UsageError(
            f"landmarks must be a list of whole months (e.g. [0, 3, 6]), got {value!r}"
        )
    bad = [v for v in value if not 0 <= v <= 120]
    if bad:
        raise UsageError(f"landmark months must be in 0..120, got {bad}")
    if not value:
        return []
    return sorted({0, *value})
