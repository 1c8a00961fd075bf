"""Loaders of the public benchmark datasets in ``../shared/data`` (read-only).

Each loader returns a :class:`RealDataset`: the features the models see, the 0/1 label, and
a sentence saying how the data enter the model. Nothing here is tuned on these data: the
models are used with their defaults, and each loader only does what its PROVENANCE.md
prescribes (which visit, which label, which split). A loader raises
:class:`DatasetMissing` when the files are absent, so the benchmark can skip the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: ``../shared/data`` relative to the repository root.
DATA_ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


class DatasetMissing(FileNotFoundError):
    """The dataset's files are not in the shared data folder."""


@dataclass
class RealDataset:
    """One benchmark dataset, ready for the models.

    Attributes
    ----------
    name : str
        Short label used in the table.
    X : DataFrame
        Training rows (index = patient id). For ``kind="panel"`` a model frame of
        :meth:`Panel.to_model_frame` (pg/mL, fed through ``PanelFeatures``); for
        ``kind="matrix"`` numeric features fed to the classifier as they are.
    y : ndarray of int
        1 = the positive class named in ``positive``.
    kind : {"panel", "matrix"}
    positive : str
        What label 1 means.
    how : str
        How the data enter the model (for the docs).
    protocols : tuple of str
        How it is evaluated: ``"loo"`` (leave-one-out), ``"cv"`` (repeated stratified
        k-fold), ``"external"`` (fit on ``X``, score ``X_valid``).
    X_valid, y_valid : DataFrame and ndarray, optional
        A fixed external validation cohort, if the dataset has one.
    """

    name: str
    X: pd.DataFrame
    y: np.ndarray
    kind: str
    positive: str
    how: str
    protocols: tuple[str, ...] = ("cv",)
    X_valid: pd.DataFrame | None = None
    y_valid: np.ndarray | None = None


def _need(path: Path) -> Path:
    if not path.exists():
        raise DatasetMissing(f"benchmark data not found: {path}")
    return path


def load_baranzini(root: Path = DATA_ROOT) -> RealDataset:
    """Baranzini 2005 IFN-beta cohort, baseline visit, version A ("Lock 53").

    The 76 baseline (month 0) transcript levels, already log-scaled and standardised by
    the data's publishers; their mean-imputed missing values (exactly 0.0) become NaN so
    XGBoost routes them and the linear part treats them as the training mean. Patients
    without a baseline visit (all 76 values 0) are dropped: 52 remain, as in the paper.
    Label 1 = good responder.
    """
    path = _need(root / "baranzini2005_ifnb" / "ifnb_lock53_wide.csv")
    raw = pd.read_csv(path)
    cols = [c for c in raw.columns if c.startswith("m00_")]
    X = raw[cols].astype(np.float64)
    X.index = raw["patient"].astype(str).rename("sample_id")
    X = X.mask(X == 0.0)
    keep = X.notna().any(axis=1).to_numpy()
    labels = raw["response_lock"].astype(str).str.strip().str.lower()
    if not set(labels) <= {"good", "poor"}:
        raise ValueError(f"{path}: unexpected response labels {sorted(set(labels))}")
    y = (labels == "good").to_numpy(dtype=int)
    X.columns = [c[len("m00_") :] for c in cols]
    return RealDataset(
        name="IFN-β transcripts (Baranzini 2005), baseline",
        X=X[keep],
        y=y[keep],
        kind="matrix",
        positive="good IFN-β responder",
        how=(
            "76 baseline PBMC transcript levels (log-scaled, standardised by the publishers; "
            "their mean-imputed zeros set to missing) fed to the classifier as they are; "
            "no cytokine panel features (the genes are anonymous)."
        ),
        protocols=("loo", "cv"),
    )


#: RACE cytokine columns (pg/mL) in the order of the file.
_RACE_CYTOKINES = (
    "Fractalkine",
    "IL-1α",
    "IL-1β",
    "IL-6",
    "IL-8",
    "IL-10",
    "IL-12(p40)",
    "IL-18",
    "TNFα",
    "ANG2",
)


def load_septic_shock(root: Path = DATA_ROOT) -> RealDataset:
    """RACE septic-shock cohort: enrolment (T0) serum cytokines -> 28-day mortality.

    The ten cytokines in pg/mL are read with :func:`cytoresp.panels.read_panel`
    (the registry maps ``IL-1β`` -> ``IL1B``, ``TNFα`` -> ``TNF``, ``IL-12(p40)`` ->
    ``IL12B``, ``ANG2`` -> ``ANGPT2``, ...), so the model sees the same engineered features
    a user's panel would: log2 values, the default log-ratios whose analytes are present,
    immune-axis scores. Label 1 = died within 28 days.
    """
    from cytoresp.panels.read import read_panel

    path = _need(root / "race_septic_shock_cytokines" / "RACE_CytokineData.csv")
    raw = pd.read_csv(path)
    t0 = raw[raw["Timepoint"].astype(str).str.strip() == "T0"].reset_index(drop=True)
    t0 = t0[t0["Mortality28"].notna()].reset_index(drop=True)
    table = t0[list(_RACE_CYTOKINES)].copy()
    table.insert(0, "sample_id", t0["studyid"].astype(str))
    panel = read_panel(table)
    frame = panel.to_model_frame()
    y = t0["Mortality28"].astype(int).to_numpy()
    return RealDataset(
        name="Septic shock (RACE), T0 cytokines -> 28-day mortality",
        X=frame,
        y=y,
        kind="panel",
        positive="died within 28 days",
        how=(
            "10 serum cytokines (pg/mL) read with read_panel and turned into the default "
            "panel features (log2, the 2 default log-ratios present, axis scores)."
        ),
    )


def load_covid(root: Path = DATA_ROOT) -> RealDataset:
    """Zoodsma COVID-19 Olink cohort: fixed train (Breda) and validation (Radboud).

    The 62 Olink Inflammation proteins (NPX-derived units, already on a log2 scale) plus
    ``age`` and ``gender`` are fed to the classifier as they are (they are not pg/mL, so
    no panel features). Fit on ``train_*`` only; ``validation_*`` is the held-out cohort.
    Label 1 = ICU.
    """
    base = root / "covid_olink_icu_zoodsma" / "disease_severity"

    def read(part: str) -> tuple[pd.DataFrame, np.ndarray]:
        X = pd.read_csv(_need(base / f"{part}_x.csv"), index_col=0).astype(np.float64)
        yv = pd.read_csv(_need(base / f"{part}_y.csv"), index_col=0)["x"].astype(str)
        if not set(yv) <= {"ICU", "nonICU"}:
            raise ValueError(f"{base}/{part}_y.csv: unexpected labels {sorted(set(yv))}")
        if len(yv) != len(X):
            raise ValueError(f"{base}/{part}: {len(X)} rows in x but {len(yv)} in y")
        X.index = X.index.astype(str).rename("sample_id")
        return X, (yv == "ICU").to_numpy(dtype=int)

    X, y = read("train")
    Xv, yv = read("validation")
    if list(Xv.columns) != list(X.columns):
        raise ValueError(f"{base}: train and validation columns differ")
    return RealDataset(
        name="COVID-19 Olink (Zoodsma), Breda -> Radboud",
        X=X,
        y=y,
        kind="matrix",
        positive="ICU admission",
        how=(
            "62 Olink Inflammation proteins (NPX, log2 scale) + age + gender fed to the "
            "classifier as they are; trained on the Breda cohort, scored once on Radboud."
        ),
        protocols=("external",),
        X_valid=Xv,
        y_valid=yv,
    )
