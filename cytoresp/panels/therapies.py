"""The therapy registry: canonical ids, display names and synonyms (generic and brand names).

One table in code (:data:`THERAPY_REGISTRY`) is the single source of truth; ``docs/therapies.md``
is generated from it by :func:`therapies_markdown` (a test keeps the file up to date).

A therapy cell of a panel file is matched by its canonical id, display name or any synonym,
ignoring case, spaces and punctuation, with ``β`` and ``beta`` read as ``b``
(``Interferon beta-1a`` = ``IFN-β-1a`` = ``ifnb1a``). A name that matches nothing is an
error with a "did you mean" suggestion (:func:`suggest_therapies`), unless the training
configuration declares it (``therapies = {hsct = "autologous HSCT"}``, see
:func:`declared_therapies`).

Canonical ids are short lower-case words, usable in column names
(``p_response_natalizumab``).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "MIN_PATIENTS_PER_HEAD",
    "THERAPY_REGISTRY",
    "Therapy",
    "declared_therapies",
    "resolve_therapy",
    "suggest_therapies",
    "therapies_markdown",
    "therapy_display",
    "therapy_key",
    "therapy_keys",
    "therapy_order",
    "unknown_therapy_message",
]

#: A therapy gets its own head (``cytoresp train --therapy all``) when at least this many
#: of its patients have a known outcome (``TrainConfig.min_patients_per_head``). Below it a
#: 5-fold cross-validation has test folds of fewer than 4 patients and an AUC per fold that
#: means little; the therapy is skipped with a message. A therapy named on its own
#: (``--therapy natalizumab``) is trained whatever its size, if cross-validation can run.
MIN_PATIENTS_PER_HEAD = 20

#: Kinds of registry entries, in the order ``docs/therapies.md`` lists them.
KINDS = ("MS disease-modifying therapy", "agent acting on cytokines (review)", "control")
_DMT, _AGENT, _CONTROL = KINDS

_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Therapy:
    """One therapy of the registry.

    Parameters
    ----------
    id : str
        Canonical id (lower case, letters, digits and ``_``), used in output columns.
    display_name : str
        Name for people (``IFN-β``).
    synonyms : tuple of str
        Other names accepted in a therapy column: generic names, brand names, codes.
    kind : str
        One of :data:`KINDS`.
    description : str
        One line on what it is.
    """

    id: str
    display_name: str
    synonyms: tuple[str, ...]
    kind: str
    description: str


def _t(id: str, display: str, synonyms: Iterable[str], kind: str, description: str  # noqa: A002
       ) -> Therapy:
    return Therapy(id, display, tuple(synonyms), kind, description)


#: The registry, in the order outputs list therapies.
THERAPY_REGISTRY: tuple[Therapy, ...] = (
    _t("ifnb", "IFN-β", [
        "interferon beta", "interferon-β", "IFN-beta", "IFNb", "IFN beta-1a", "IFN beta-1b",
        "interferon beta-1a", "interferon beta-1b", "peginterferon beta-1a",
        "pegylated interferon beta-1a", "peg-IFN-beta-1a", "PEG-IFN", "Avonex", "Rebif",
        "Plegridy", "Betaseron",
        "Betaferon", "Extavia"],
       _DMT, "interferon-β preparations (1a, 1b, pegylated)"),
    _t("ga", "glatiramer acetate", [
        "glatiramer", "GA", "Copaxone", "Glatopa", "Brabio", "Copemyl", "generic glatiramer",
        "glatiramer generic", "copolymer 1", "copolymer-1", "Cop-1"],
       _DMT, "glatiramer acetate, brand and generic"),
    _t("natalizumab", "natalizumab", ["Tysabri", "Tyruko", "NTZ"],
       _DMT, "anti-α4-integrin antibody"),
    _t("fingolimod", "fingolimod", ["Gilenya", "Tascenso", "FTY720", "FTY-720"],
       _DMT, "S1P receptor modulator"),
    _t("siponimod", "siponimod", ["Mayzent", "BAF312"], _DMT, "S1P receptor modulator"),
    _t("ozanimod", "ozanimod", ["Zeposia"], _DMT, "S1P receptor modulator"),
    _t("ponesimod", "ponesimod", ["Ponvory"], _DMT, "S1P receptor modulator"),
    _t("dmf", "dimethyl fumarate", ["Tecfidera", "BG-12", "BG12"],
       _DMT, "fumarate (pro-drug of monomethyl fumarate)"),
    _t("drf", "diroximel fumarate", ["Vumerity"],
       _DMT, "fumarate (pro-drug of monomethyl fumarate)"),
    _t("teriflunomide", "teriflunomide", ["Aubagio"], _DMT, "pyrimidine synthesis inhibitor"),
    _t("ocrelizumab", "ocrelizumab", ["Ocrevus", "Ocrevus Zunovo"], _DMT, "anti-CD20 antibody"),
    _t("ofatumumab", "ofatumumab", ["Kesimpta"], _DMT, "anti-CD20 antibody"),
    _t("ublituximab", "ublituximab", ["Briumvi"], _DMT, "anti-CD20 antibody"),
    _t("rituximab", "rituximab", ["MabThera", "Rituxan", "Truxima", "Ruxience"],
       _DMT, "anti-CD20 antibody (off-label in MS)"),
    _t("alemtuzumab", "alemtuzumab", ["Lemtrada"], _DMT, "anti-CD52 antibody"),
    _t("cladribine", "cladribine", ["Mavenclad"], _DMT, "purine analogue (oral)"),
    _t("mitoxantrone", "mitoxantrone", ["Novantrone"], _AGENT, "cytostatic"),
    _t("estriol", "estriol", ["oestriol"], _AGENT, "oestrogen"),
    _t("statin", "statins", [
        "statin therapy", "simvastatin", "atorvastatin", "rosuvastatin", "Zocor", "Lipitor"],
       _AGENT, "HMG-CoA reductase inhibitors"),
    _t("vitamin_d", "vitamin D", [
        "vitamin D3", "vit D", "vitD3", "cholecalciferol", "ergocalciferol"],
       _AGENT, "vitamin D supplementation"),
    _t("placebo", "placebo", [], _CONTROL, "placebo arm of a trial"),
    _t("untreated", "untreated", [
        "no treatment", "no DMT", "none", "treatment-naive", "treatment naive", "naive"],
       _CONTROL, "no disease-modifying therapy"),
)


def therapy_key(name: Any) -> str:
    """The matching key of a therapy name: lower case, ``β``/``beta`` as ``b``, no punctuation.

    Examples
    --------
    >>> therapy_key("Interferon beta-1a"), therapy_key("IFN-β-1a"), therapy_key(" COPAXONE ")
    ('interferonb1a', 'ifnb1a', 'copaxone')
    """
    s = unicodedata.normalize("NFKC", str(name)).lower()
    s = s.replace("β", "b").replace("beta", "b")
    return re.sub(r"[^a-z0-9]+", "", s)


@lru_cache(maxsize=1)
def _registry_keys() -> tuple[dict[str, str], dict[str, Therapy]]:
    keys: dict[str, str] = {}
    by_id: dict[str, Therapy] = {}
    for t in THERAPY_REGISTRY:
        if t.id in by_id or not _ID.match(t.id) or t.kind not in KINDS:
            raise RuntimeError(f"therapy registry: bad or duplicate id {t.id!r}")
        by_id[t.id] = t
        for name in (t.id, t.display_name, *t.synonyms):
            k = therapy_key(name)
            if keys.get(k, t.id) != t.id:
                raise RuntimeError(f"therapy registry: {name!r} matches {keys[k]} and {t.id}")
            keys[k] = t.id
    # IFN-β 1a / 1b and peginterferon spellings beyond the listed ones: ifnb + suffix
    for extra in ("ifnb1a", "ifnb1b", "interferonb1a", "interferonb1b", "peginterferonb",
                  "peginterferonb1a", "ifnbeta", "interferonbeta"):
        keys.setdefault(extra, "ifnb")
    return keys, by_id


def declared_therapies(declared: Mapping[str, Any] | None) -> dict[str, Therapy]:
    """Therapies declared in a training configuration, checked.

    Parameters
    ----------
    declared : mapping of id to a display name (str) or to ``{"name": ..., "synonyms": [...]}``

    Returns
    -------
    dict of str to Therapy

    Raises
    ------
    ValueError
        For an id that is not a lower-case word, or a name already in the registry.

    Examples
    --------
    >>> declared_therapies({"hsct": "autologous HSCT"})["hsct"].display_name
    'autologous HSCT'
    >>> declared_therapies({"tysabri": "x"})
    Traceback (most recent call last):
    ...
    ValueError: declared therapy 'tysabri': 'tysabri' is already in the therapy registry ...
    """
    out: dict[str, Therapy] = {}
    keys, _ = _registry_keys()
    for tid, spec in (declared or {}).items():
        if not isinstance(tid, str) or not _ID.match(tid):
            raise ValueError(f"declared therapy id {tid!r} must be a lower-case word (letters, "
                             f"digits, '_'; e.g. 'hsct')")
        if isinstance(spec, str):
            name, synonyms = spec, ()
        elif isinstance(spec, Mapping) and set(spec) <= {"name", "synonyms"} and "name" in spec:
            name, synonyms = str(spec["name"]), tuple(str(s) for s in spec.get("synonyms", ()))
        else:
            raise ValueError(f"declared therapy {tid!r} must be a display name or "
                             f"{{name = ..., synonyms = [...]}}, got {spec!r}")
        for text in (tid, name, *synonyms):
            hit = keys.get(therapy_key(text))
            if hit is not None:
                raise ValueError(f"declared therapy {tid!r}: {text!r} is already in the therapy "
                                 f"registry as {hit!r}; use the registry's id")
        out[tid] = Therapy(tid, name, synonyms, "declared", "declared in the training config")
    return out


def therapy_keys(declared: Mapping[str, Therapy] | None = None) -> dict[str, str]:
    """Matching key -> canonical id, for the registry plus ``declared`` therapies."""
    keys = dict(_registry_keys()[0])
    for t in (declared or {}).values():
        for name in (t.id, t.display_name, *t.synonyms):
            keys.setdefault(therapy_key(name), t.id)
    return keys


def resolve_therapy(name: Any, declared: Mapping[str, Therapy] | None = None) -> str | None:
    """The canonical id of a therapy name, or None when it is unknown.

    Examples
    --------
    >>> resolve_therapy("Avonex"), resolve_therapy("Tysabri"), resolve_therapy("aspirin")
    ('ifnb', 'natalizumab', None)
    """
    return therapy_keys(declared).get(therapy_key(name))


def suggest_therapies(name: Any, declared: Mapping[str, Therapy] | None = None,
                      n: int = 3) -> list[str]:
    """Canonical ids whose names are close to ``name`` (best first; empty when none is close).

    Examples
    --------
    >>> suggest_therapies("Tysabry"), suggest_therapies("copaxon"), suggest_therapies("xyz")
    (['natalizumab'], ['ga'], [])
    """
    keys = therapy_keys(declared)
    key = therapy_key(name)
    if not key:
        return []
    out: list[str] = []
    for hit in difflib.get_close_matches(key, list(keys), n=10, cutoff=0.75):
        if keys[hit] not in out:
            out.append(keys[hit])
    return out[:n]


def therapy_display(tid: str, declared: Mapping[str, Therapy] | None = None) -> str:
    """The display name of a therapy id (the id itself when unknown).

    Examples
    --------
    >>> therapy_display("ifnb"), therapy_display("dmf")
    ('IFN-β', 'dimethyl fumarate')
    """
    t = _registry_keys()[1].get(tid) or (declared or {}).get(tid)
    return t.display_name if t is not None else tid


def therapy_order(ids: Iterable[str]) -> list[str]:
    """``ids`` in registry order, ids not in the registry after them in their given order.

    Examples
    --------
    >>> therapy_order(["natalizumab", "hsct", "ga", "ifnb"])
    ['ifnb', 'ga', 'natalizumab', 'hsct']
    """
    ids = list(dict.fromkeys(ids))
    rank = {t.id: i for i, t in enumerate(THERAPY_REGISTRY)}
    known = sorted((t for t in ids if t in rank), key=rank.__getitem__)
    return known + [t for t in ids if t not in rank]


def unknown_therapy_message(text: str, declared: Mapping[str, Therapy] | None = None) -> str:
    """The message of a therapy cell that matches no registered or declared therapy.

    Examples
    --------
    >>> unknown_therapy_message("Tysabry").split(";")[:2]
    ["unknown therapy 'Tysabry'", " did you mean 'natalizumab' (natalizumab)?"]
    """
    from cytoresp.errors import quote_cell

    msg = f"unknown therapy {quote_cell(text)}"
    close = suggest_therapies(text, declared)
    if close:
        msg += "; did you mean " + " or ".join(
            f"'{t}' ({therapy_display(t, declared)})" for t in close) + "?"
    return (msg + "; therapies and their accepted names are listed in docs/therapies.md, and "
            "one not listed there can be declared in the training config "
            "(therapies = {id = \"name\"})")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def therapies_markdown() -> str:
    """The registry as the markdown page ``docs/therapies.md`` (generated; do not edit by hand).

    Examples
    --------
    >>> therapies_markdown().splitlines()[0]
    '# Therapies'
    """
    lines = [
        "# Therapies",
        "",
        "<!-- generated by cytoresp.panels.therapies.therapies_markdown(); do not edit -->",
        "",
        "The therapy registry of cytoresp (`cytoresp.panels.therapies.THERAPY_REGISTRY`). A",
        "cell of the `therapy` column (also `treatment`, `dmt`) is matched to a therapy by its",
        "id, its display name or any synonym below, ignoring case, spaces and punctuation, with",
        "`β` and `beta` read as `b` (`Interferon beta-1a` = `IFN-β-1a` = `ifnb1a`). Prediction",
        "columns use the id: `p_response_<id>`, `drivers_<id>`.",
        "",
        "A name that matches nothing is an error that suggests the closest registered names",
        "(\"unknown therapy 'Tysabry'; did you mean 'natalizumab'?\"). A therapy that is not",
        "registered (a trial drug, autologous HSCT) can be declared in the training config,",
        "with an id (a lower-case word), a display name and optional synonyms:",
        "",
        "```toml",
        "[therapies]",
        "hsct = \"autologous haematopoietic stem-cell transplantation\"",
        "ibudilast = { name = \"ibudilast\", synonyms = [\"MN-166\"] }",
        "```",
        "",
        "The model keeps the declaration, so files scored later may use the same names.",
        "",
        "## Heads",
        "",
        f"`cytoresp train --therapy all` fits one head per therapy with at least "
        f"{MIN_PATIENTS_PER_HEAD}",
        "patients of known outcome (`min_patients_per_head` in the training config); a therapy",
        "with fewer is skipped, and `train` says so. A therapy named alone (`--therapy dmf`)",
        "is trained whatever its size, as long as cross-validation can run (at least as many",
        "responders and non-responders as folds). Patients on `placebo` or `untreated` get a",
        "head like any therapy: their head estimates the outcome without treatment.",
        "",
    ]
    for kind in KINDS:
        lines += [f"## {kind[0].upper()}{kind[1:]}", "",
                  "| id | display name | accepted names | what it is |", "|---|---|---|---|"]
        for t in THERAPY_REGISTRY:
            if t.kind == kind:
                syn = ", ".join(f"`{s}`" for s in t.synonyms)
                lines.append(f"| `{t.id}` | {_cell(t.display_name)} | {_cell(syn)} | "
                             f"{_cell(t.description)} |")
        lines.append("")
    return "\n".join(lines)
