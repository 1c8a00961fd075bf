"""The validated panel: values, censoring, labels and covariates of one cohort."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Clinical covariates DESIGN.md names; passed to the model as numbers (sex: 1 = female).
CLINICAL_COVARIATES: tuple[str, ...] = (
    "age",
    "sex",
    "edss",
    "disease_duration_y",
    "relapses_prior_2y",
    "gd_lesions",
)

#: The two therapies of the simulator and of the IFN-β / GA recommendation. Every therapy
#: a panel may hold is in the therapy registry (:mod:`cytoresp.panels.therapies`).
THERAPIES: tuple[str, ...] = ("ifnb", "ga")

#: Censoring codes in :attr:`Panel.censoring`.
BELOW, OBSERVED, ABOVE = -1, 0, 1

#: Names of the visit columns in a model frame with ``visits=True``.
PATIENT_COLUMN = "patient_id"
MONTH_COLUMN = "month"

#: Name of the plate column in a model frame (and the default ``plate_column`` of
#: :class:`~cytoresp.features.plates.PlateMedianNormaliser`).
PLATE_COLUMN = "plate"


def plate_codes(labels: Any) -> np.ndarray:
    """Stable float64 codes of plate labels (NaN for a missing or empty label).

    A model frame is all float64, so a plate label travels in it as a number: the first
    48 bits of the BLAKE2b hash of the label's UTF-8 text (surrounding spaces removed).
    Integers below 2**53 are exact in float64, the code does not depend on the platform,
    the Python version or the other labels, and two labels share a code with probability
    about ``n_plates**2 / 2**49`` (1e-9 for a thousand plates). Numbers are labels like
    any other: ``3`` and ``"3"`` get the same code.

    Parameters
    ----------
    labels : array-like
        Plate labels (str, numbers, None/NaN for missing).

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> codes = plate_codes(["P1", "P1", None, " P1 "])
    >>> bool(codes[0] == codes[1] == codes[3]), bool(np.isnan(codes[2]))
    (True, True)
    >>> float(plate_codes(["P1"])[0]) == float(plate_codes(["P1", "P2"])[0])
    True
    """
    arr = np.asarray(pd.Series(labels, dtype=object).to_numpy(), dtype=object)
    out = np.full(len(arr), np.nan, dtype=np.float64)
    cache: dict[str, float] = {}
    for i, label in enumerate(arr.tolist()):
        if label is None or (isinstance(label, float) and np.isnan(label)):
            continue
        if isinstance(label, float) and label.is_integer():
            label = int(label)
        text = str(label).strip()
        if not text:
            continue
        code = cache.get(text)
        if code is None:
            digest = hashlib.blake2b(text.encode("utf-8"), digest_size=6).digest()
            code = cache[text] = float(int.from_bytes(digest, "big"))
        out[i] = code
    return out


@dataclass
class Panel:
    """A validated cytokine panel, one row per sample, in input order.

    Attributes
    ----------
    values : DataFrame
        Index ``sample_id`` (str), columns canonical analyte ids, float64 in pg/mL.
        NaN = missing. A censored cell holds its limit (the LLOQ for below, the ULOQ
        for above); :attr:`censoring` says which.
    censoring : DataFrame
        Same index and columns as ``values``, int8: ``-1`` below the lower limit,
        ``+1`` above the upper limit, ``0`` observed or missing.
    covariates : DataFrame
        Same index; the clinical covariates present (subset of
        :data:`CLINICAL_COVARIATES`), float64, ``sex`` coded 1 = female, 0 = male.
    therapy : Series or None
        Canonical therapy ids (``"ifnb"``, ``"ga"``, ``"natalizumab"``, ...: the therapy
        registry, ``docs/therapies.md``) (object dtype, may hold NaN), or None if absent.
    responder : Series or None
        float64 0.0 / 1.0 (NaN where unknown), or None if absent.
    plate : Series or None
        Plate or batch label (str), or None if absent.
    source : str
        Where the panel came from (a path, ``"<stdin>"`` or ``"<DataFrame>"``).
    warnings : list of str
        Non-fatal findings (unknown columns ignored, flagged values, ...).
    strict_notes : list of str
        The findings ``--strict`` (``strict = true``) turns into errors: ignored columns
        (with "did you mean" where a header is close to a known name) and roles guessed or
        refused (a plate column with one sample per plate). Each is also in ``warnings``.
    patient_id : Series or None
        The patient of each sample (str) when the panel holds visits, else None (then
        each sample is its own patient, at baseline). See :mod:`cytoresp.panels.visits`.
    month : Series or None
        Months since the therapy started (float64 >= 0; 0 = baseline) when the panel
        holds visits, else None. ``patient_id`` and ``month`` are both set or both None,
        and (patient, month) is unique.
    """

    values: pd.DataFrame
    censoring: pd.DataFrame
    covariates: pd.DataFrame
    therapy: pd.Series | None = None
    responder: pd.Series | None = None
    plate: pd.Series | None = None
    source: str = "<DataFrame>"
    warnings: list[str] = field(default_factory=list)
    strict_notes: list[str] = field(default_factory=list)
    patient_id: pd.Series | None = None
    month: pd.Series | None = None

    @property
    def has_visits(self) -> bool:
        """True when the panel holds ``patient_id`` and ``month`` (several visits)."""
        return self.patient_id is not None and self.month is not None

    @property
    def sample_ids(self) -> pd.Index:
        """The sample ids, in input order."""
        return self.values.index

    @property
    def analytes(self) -> list[str]:
        """Canonical ids of the analytes in this panel, in column order."""
        return list(self.values.columns)

    def __len__(self) -> int:
        return len(self.values)

    def to_model_frame(self, plate: bool = False, visits: bool = False) -> pd.DataFrame:
        """The float64 frame the models take as input.

        Analyte columns keep their value in pg/mL; a cell censored *below* its lower
        limit L is encoded as ``-L`` (concentrations are never negative, so the sign
        carries the censoring without extra columns); a cell censored above holds its
        upper limit. Clinical covariates follow as float64. Missing stays NaN.

        Parameters
        ----------
        plate : bool, default False
            Append a ``plate`` column holding each row's plate as a float code
            (:func:`plate_codes`, NaN where the row has none),
            for models with per-plate normalisation. Raises
            :class:`~cytoresp.errors.InputError` if the panel has no plate column.
        visits : bool, default False
            Put a ``patient_id`` column (object) and a ``month`` column (float64) first,
            the input of :func:`cytoresp.features.landmark.landmark_table`. A panel
            without visits gets ``patient_id`` = the sample id and ``month`` = 0 (every
            sample a baseline sample). The frame is then not all float64.

        Examples
        --------
        >>> import pandas as pd
        >>> v = pd.DataFrame({"IL10": [3.0, 0.5]}, index=pd.Index(["a", "b"], name="sample_id"))
        >>> c = pd.DataFrame({"IL10": [0, -1]}, index=v.index, dtype="int8")
        >>> Panel(v, c, pd.DataFrame(index=v.index)).to_model_frame()["IL10"].tolist()
        [3.0, -0.5]
        >>> Panel(v, c, pd.DataFrame(index=v.index)).to_model_frame(visits=True).columns.tolist()
        ['patient_id', 'month', 'IL10']
        """
        vals = self.values.to_numpy(dtype=np.float64, copy=True)
        below = self.censoring.to_numpy() == BELOW
        vals[below] = -np.abs(vals[below])
        frame = pd.DataFrame(vals, index=self.values.index, columns=self.values.columns)
        if len(self.covariates.columns):
            frame = pd.concat([frame, self.covariates.astype(np.float64)], axis=1)
        if plate:
            from cytoresp.errors import InputError, Problem

            if self.plate is None:
                raise InputError([Problem(
                    self.source, None, None,
                    "no 'plate' column: per-plate median normalisation (train "
                    "--plate-normalise, or a model trained with it) needs the plate of every "
                    "sample; add a column 'plate' (or 'batch') with the plate label of each row",
                )])
            frame[PLATE_COLUMN] = plate_codes(self.plate.to_numpy())
        if visits:
            index = self.values.index
            if self.has_visits:
                pid = self.patient_id.to_numpy(dtype=object)
                month = self.month.to_numpy(dtype=np.float64)
            else:
                pid = np.asarray(index, dtype=object)
                month = np.zeros(len(index), dtype=np.float64)
            frame.insert(0, MONTH_COLUMN, month)
            frame.insert(0, PATIENT_COLUMN, pd.Series(pid, index=index, dtype=object))
        return frame

    def subset(self, mask: np.ndarray | pd.Series) -> Panel:
        """Rows selected by a boolean mask or integer positions, as a new Panel."""
        mask = np.asarray(mask)

        def pick(obj):
            if obj is None:
                return None
            return obj.loc[mask] if mask.dtype == bool else obj.iloc[mask]

        return Panel(
            values=pick(self.values),
            censoring=pick(self.censoring),
            covariates=pick(self.covariates),
            therapy=pick(self.therapy),
            responder=pick(self.responder),
            plate=pick(self.plate),
            source=self.source,
            warnings=list(self.warnings),
            strict_notes=list(self.strict_notes),
            patient_id=pick(self.patient_id),
            month=pick(self.month),
        )
