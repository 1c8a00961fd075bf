"""Concentration units: parse a unit as written in a header and convert it to pg/mL."""

from __future__ import annotations

import re
import unicodedata

#: Factor to pg of each mass prefix.
_MASS_TO_PG: dict[str, float] = {"fg": 1e-3, "pg": 1.0, "ng": 1e3, "ug": 1e6, "mcg": 1e6,
                                 "mg": 1e9, "g": 1e12}
#: Factor to mL of each volume.
_VOLUME_TO_ML: dict[str, float] = {"ml": 1.0, "dl": 100.0, "l": 1000.0}

_UNIT = re.compile(r"^(?P<mass>fg|pg|ng|ug|mcg|mg|g)\s*(?:/|per|_)?\s*(?P<vol>ml|dl|l)$")

#: Units cytoresp accepts, as shown in messages.
SUPPORTED_UNITS = "pg/mL, ng/mL, µg/mL, fg/mL, mg/mL and the same per L or dL (e.g. ng/L)"


def unit_factor(unit: str | None) -> float | None:
    """The factor that converts a value in ``unit`` to pg/mL, or None if unknown.

    ``None`` or an empty unit means pg/mL (factor 1). Case, spaces and the micro sign
    (``µ``/``μ``/``u``/``mc``) do not matter.

    Examples
    --------
    >>> unit_factor("ng/ml"), unit_factor("µg/mL"), unit_factor("pgml"), unit_factor("ng/L")
    (1000.0, 1000000.0, 1.0, 1.0)
    >>> unit_factor("U/mL") is None
    True
    """
    if unit is None:
        return 1.0
    s = unicodedata.normalize("NFKC", str(unit)).strip().lower()
    if not s:
        return 1.0
    s = s.replace("μ", "u").replace("µ", "u")
    s = re.sub(r"\s+", " ", s)
    m = _UNIT.match(s)
    if m is None:
        return None
    return _MASS_TO_PG[m.group("mass")] / _VOLUME_TO_ML[m.group("vol")]
