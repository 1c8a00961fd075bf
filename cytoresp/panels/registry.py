"""The analyte registry: canonical ids, display names, synonyms, default limits and axes.

One table in code (:data:`ANALYTES`) is the single source of truth; ``docs/analytes.md`` is
generated from it by :func:`registry_markdown` (a test keeps the file up to date).

Canonical ids are HGNC gene symbols, except ``IL12`` for the IL-12p70 heterodimer (no single
gene) and ``IL12B`` for IL-12p40 (its gene). Names are matched case- and
punctuation-insensitively, Greek letters and their spelled-out names are interchangeable
(``IFN-γ`` = ``IFN-gamma`` = ``IFNg``), and a trailing unit (``IL-17A (pg/ml)``,
``IFN-gamma [pg/mL]``, ``IL6_pgml``) or Bio-Plex bead region (``IL-6 (19)``) is ignored.

Ambiguous names are decided as follows (also in docs/analytes.md):

- ``IL-1`` alone is refused (IL-1α and IL-1β are both common and differ in biology);
  :func:`resolve_analyte` returns None and :func:`ambiguity` explains why.
- ``IL-12`` alone means IL-12p70 (``IL12``), the form most kits report; the reader warns so
  that a p40 assay is not mislabelled silently. Likewise ``IL-17`` means IL-17A,
  ``TGF-β`` means TGF-β1, ``IFN-α`` means IFN-α2 and ``VEGF`` means VEGF-A, each with a
  warning (see :func:`interpretation`).
- Receptors are never mapped to their ligands (``CD40`` is not sCD40L, ``IL-2R`` is not
  IL-2, ``IL-18R1`` is not IL-18), and Olink's ``LAP TGF-beta-1`` (the latency-associated
  peptide) is not mapped to TGF-β1.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

#: The immune axes, in the order axis scores are reported.
AXES: tuple[str, ...] = ("Th1", "Th2", "Th17", "Treg", "innate", "chemokine", "IFN-response")

_HS = "LLOQ: Milliplex high-sensitivity T-cell panel MinDC (Numis 2021, Table 1); ULOQ: typical"
_TYP = "typical"


@dataclass(frozen=True)
class Analyte:
    """One analyte of the registry.

    Parameters
    ----------
    id : str
        Canonical id (HGNC symbol; ``IL12`` = IL-12p70, ``IL12B`` = IL-12p40).
    display_name : str
        Name for people, with Greek letters (``IFN-γ``).
    synonyms : tuple of str
        Other spellings accepted in input files (the id and display name are implied).
    lloq, uloq : float
        Default lower / upper limit of quantification in pg/mL, used when a censored cell
        gives no limit of its own (``< LLOQ``, ``OOR <``).
    axis : str or None
        Immune axis (one of :data:`AXES`) or None.
    description : str
        One line on what it is.
    limits_source : str
        Where ``lloq``/``uloq`` come from (``"typical"`` = an order-of-magnitude value for
        common Luminex/MSD kits, not a sourced number).

    Examples
    --------
    >>> get_analyte("IFNG").display_name
    'IFN-γ'
    """

    id: str
    display_name: str
    synonyms: tuple[str, ...]
    lloq: float
    uloq: float
    axis: str | None
    description: str
    limits_source: str = _TYP


def _a(id, display, synonyms, lloq, uloq, axis, description, source=_TYP) -> Analyte:  # noqa: ANN001
    return Analyte(id, display, tuple(synonyms), float(lloq), float(uloq), axis, description,
                   source)


#: The registry, in reporting order (axes grouped).
ANALYTES: tuple[Analyte, ...] = (
    # --- Th1
    _a("IFNG", "IFN-γ", ["IFN-gamma", "IFN gamma", "IFNg", "IFNγ", "interferon gamma",
                         "interferon-γ", "IFN-g", "IFNG"], 0.48, 2000, "Th1",
       "interferon gamma, the Th1 signature cytokine", _HS),
    _a("TNF", "TNF-α", ["TNF-alpha", "TNFa", "TNFα", "TNF alpha", "tumor necrosis factor",
                        "tumour necrosis factor alpha", "tumor necrosis factor alpha", "TNF"],
       0.16, 2000, "Th1", "tumour necrosis factor", _HS),
    _a("IL12", "IL-12p70", ["IL-12 p70", "IL-12(p70)", "IL12p70", "IL-12P70"], 0.15, 2000, "Th1",
       "IL-12 heterodimer p35/p40 (bioactive form)", _HS),
    _a("IL2", "IL-2", ["interleukin-2", "interleukin 2"], 0.19, 2000, "Th1",
       "T-cell growth factor", _HS),
    _a("LTA", "LT-α", ["lymphotoxin alpha", "lymphotoxin-α", "LT-alpha", "LTa", "TNF-β",
                       "TNF-beta", "TNFb"], 1.0, 10000, "Th1", "lymphotoxin alpha (TNF-β)"),
    # --- Th2
    _a("IL4", "IL-4", ["interleukin-4", "interleukin 4"], 1.12, 2000, "Th2",
       "Th2 signature cytokine", _HS),
    _a("IL5", "IL-5", ["interleukin-5", "interleukin 5"], 0.3, 2000, "Th2", "eosinophil growth"),
    _a("IL13", "IL-13", ["interleukin-13", "interleukin 13"], 0.23, 2000, "Th2",
       "Th2 effector cytokine", _HS),
    # --- Th17
    _a("IL17A", "IL-17A", ["IL-17a", "interleukin-17A", "CTLA8"], 0.5, 2000, "Th17",
       "Th17 signature cytokine"),
    _a("IL17F", "IL-17F", ["interleukin-17F"], 2.0, 10000, "Th17", "Th17 cytokine"),
    _a("IL22", "IL-22", ["interleukin-22"], 2.0, 10000, "Th17", "Th17/Th22 cytokine"),
    _a("IL23", "IL-23", ["IL-23 p19/p40", "IL23A", "IL-23p19", "interleukin-23"], 10.0, 20000,
       "Th17", "IL-23 heterodimer p19/p40, Th17 maintenance"),
    _a("IL21", "IL-21", ["interleukin-21"], 0.5, 2000, "Th17", "Tfh/Th17 cytokine"),
    # --- Treg / regulatory
    _a("IL10", "IL-10", ["interleukin-10", "interleukin 10"], 0.56, 2000, "Treg",
       "regulatory, anti-inflammatory", _HS),
    _a("TGFB1", "TGF-β1", ["TGF-beta1", "TGF-beta-1", "TGF-beta 1", "TGFb1", "TGFβ1",
                           "TGF-b1", "transforming growth factor beta 1"], 15.0, 100000,
       "Treg", "regulatory; serum levels are in ng/mL"),
    # --- innate
    _a("IL1B", "IL-1β", ["IL-1beta", "IL-1 beta", "IL1b", "IL1β", "IL-1b"], 0.14, 2000, "innate",
       "inflammasome product, pyrogen", _HS),
    _a("IL6", "IL-6", ["interleukin-6", "interleukin 6"], 0.11, 2000, "innate",
       "acute-phase inducer", _HS),
    _a("IL18", "IL-18", ["interleukin-18", "IGIF"], 1.0, 10000, "innate",
       "inflammasome product; serum levels in the hundreds to thousands of pg/mL"),
    _a("IL1A", "IL-1α", ["IL-1alpha", "IL-1 alpha", "IL1a", "IL1α", "IL-1a"], 1.0, 10000,
       "innate", "alarmin, IL-1 family"),
    _a("IL1RN", "IL-1RA", ["IL-1Ra", "IL1RA", "IL-1 receptor antagonist", "IL1 RA"], 5.0, 10000,
       "innate", "IL-1 receptor antagonist"),
    _a("IL12B", "IL-12p40", ["IL-12 p40", "IL-12(p40)", "IL12p40", "IL-12P40", "IL-12B",
                             "IL-12/IL-23p40", "IL-12/23 p40", "IL-12/IL-23 p40"], 5.0, 20000,
       "innate", "p40 subunit shared by IL-12 and IL-23 (monomer/homodimer)"),
    _a("IL15", "IL-15", ["interleukin-15"], 0.5, 2000, "innate", "NK and CD8 homeostasis"),
    _a("IL33", "IL-33", ["interleukin-33"], 1.0, 10000, "innate", "alarmin, IL-1 family"),
    _a("CSF3", "G-CSF", ["GCSF", "granulocyte colony-stimulating factor"], 2.0, 10000, "innate",
       "granulocyte colony-stimulating factor"),
    _a("OSM", "OSM", ["oncostatin M", "oncostatin-M"], 1.0, 10000, "innate",
       "IL-6 family cytokine"),
    # --- chemokines
    _a("CXCL8", "IL-8", ["IL8", "IL-8/CXCL8", "interleukin-8"], 0.13, 2000, "chemokine",
       "neutrophil chemoattractant", _HS),
    _a("CCL2", "MCP-1", ["MCP1", "MCAF", "monocyte chemoattractant protein 1"], 1.0, 10000,
       "chemokine", "monocyte chemoattractant"),
    _a("CXCL13", "CXCL13", ["BCA-1", "BLC", "BCA1"], 1.0, 10000, "chemokine",
       "B-cell chemoattractant; raised with MS activity"),
    _a("CCL3", "MIP-1α", ["MIP-1alpha", "MIP1a", "MIP-1a", "MIP-1 alpha"], 1.0, 10000,
       "chemokine", "macrophage inflammatory protein 1α"),
    _a("CCL4", "MIP-1β", ["MIP-1beta", "MIP1b", "MIP-1b", "MIP-1 beta"], 1.0, 10000,
       "chemokine", "macrophage inflammatory protein 1β"),
    _a("CCL5", "RANTES", ["CCL5/RANTES"], 1.0, 10000, "chemokine",
       "T-cell chemoattractant; serum levels in ng/mL"),
    _a("CCL11", "Eotaxin", ["eotaxin-1", "eotaxin1"], 2.0, 10000, "chemokine",
       "eosinophil chemoattractant"),
    _a("CCL20", "MIP-3α", ["MIP-3alpha", "MIP3a", "MIP-3a", "LARC"], 1.0, 10000, "chemokine",
       "CCR6 ligand, Th17 homing"),
    _a("CCL7", "MCP-3", ["MCP3"], 5.0, 10000, "chemokine", "monocyte chemoattractant 3"),
    _a("CCL8", "MCP-2", ["MCP2"], 5.0, 10000, "chemokine", "monocyte chemoattractant 2"),
    _a("CCL13", "MCP-4", ["MCP4"], 5.0, 10000, "chemokine", "monocyte chemoattractant 4"),
    _a("CCL17", "TARC", [], 2.0, 10000, "chemokine", "CCR4 ligand, Th2 homing"),
    _a("CCL19", "MIP-3β", ["MIP-3beta", "MIP3b", "MIP-3b", "ELC"], 5.0, 10000, "chemokine",
       "CCR7 ligand"),
    _a("CCL22", "MDC", [], 5.0, 10000, "chemokine", "CCR4 ligand"),
    _a("CXCL1", "GRO-α", ["GROalpha", "GROa", "GRO-alpha", "GRO alpha"], 5.0, 10000,
       "chemokine", "neutrophil chemoattractant"),
    _a("CXCL5", "ENA-78", ["ENA78"], 5.0, 10000, "chemokine", "neutrophil chemoattractant"),
    _a("CX3CL1", "Fractalkine", ["fractalkine/CX3CL1"], 10.0, 20000, "chemokine",
       "membrane/soluble chemokine"),
    _a("CXCL6", "GCP-2", ["GCP2"], 5.0, 10000, "chemokine", "granulocyte chemotactic protein 2"),
    _a("CXCL12", "SDF-1", ["SDF-1α", "SDF-1alpha", "SDF1", "SDF-1a"], 20.0, 20000, "chemokine",
       "stromal cell-derived factor 1"),
    _a("CCL23", "MPIF-1", ["MPIF1", "CKβ8-1"], 5.0, 10000, "chemokine",
       "myeloid progenitor inhibitory factor 1"),
    _a("CCL24", "Eotaxin-2", ["eotaxin2", "MPIF-2"], 5.0, 10000, "chemokine",
       "eosinophil chemoattractant"),
    _a("CCL25", "TECK", [], 5.0, 10000, "chemokine", "CCR9 ligand, gut homing"),
    _a("CCL26", "Eotaxin-3", ["eotaxin3"], 5.0, 10000, "chemokine", "eosinophil chemoattractant"),
    _a("CCL28", "MEC", [], 5.0, 10000, "chemokine", "mucosae-associated epithelial chemokine"),
    # --- IFN response
    _a("CXCL10", "IP-10", ["IP10", "CXCL10/IP-10"], 1.0, 10000, "IFN-response",
       "interferon-induced chemokine; burst after IFN-β injection"),
    _a("TNFSF13B", "BAFF", ["BLyS", "BAFF/BLyS", "TALL-1", "sBAFF"], 10.0, 20000, "IFN-response",
       "B-cell activating factor; raised by IFN-β"),
    _a("CXCL9", "MIG", ["MIG/CXCL9"], 5.0, 10000, "IFN-response",
       "interferon-gamma-induced chemokine"),
    _a("CXCL11", "I-TAC", ["ITAC", "IP-9"], 1.0, 10000, "IFN-response",
       "interferon-induced chemokine"),
    # --- no axis
    _a("CSF2", "GM-CSF", ["GMCSF", "GM CSF", "granulocyte-macrophage colony-stimulating factor"],
       0.5, 2000, None, "GM-CSF; produced by pathogenic T cells in MS"),
    _a("CSF1", "M-CSF", ["MCSF", "CSF-1"], 10.0, 20000, None,
       "macrophage colony-stimulating factor"),
    _a("TNFSF13", "APRIL", [], 50.0, 100000, None, "a proliferation-inducing ligand"),
    _a("CD40LG", "sCD40L", ["CD40L", "CD40 ligand", "sCD40 ligand", "CD154"], 5.0, 20000, None,
       "soluble CD40 ligand (not the receptor CD40)"),
    _a("IL2RA", "sIL-2Rα", ["sIL-2Ra", "sIL2Ra", "IL-2Ra", "IL-2Rα", "sIL-2R alpha", "sCD25",
                            "CD25", "IL-2R alpha", "IL2R alpha"], 10.0, 20000, None,
       "soluble IL-2 receptor alpha (not IL-2)"),
    _a("IL3", "IL-3", ["interleukin-3"], 0.5, 2000, None, "multi-lineage growth factor"),
    _a("IL7", "IL-7", ["interleukin-7"], 0.5, 2000, None, "T-cell homeostasis"),
    _a("IL9", "IL-9", ["interleukin-9"], 1.0, 2000, None, "Th9 cytokine"),
    _a("IL16", "IL-16", ["interleukin-16"], 5.0, 10000, None, "CD4 chemoattractant"),
    _a("IL25", "IL-25", ["IL-17E", "IL17E"], 5.0, 10000, None, "IL-17E, promotes Th2"),
    _a("IL27", "IL-27", ["interleukin-27", "IL-27p28"], 5.0, 10000, None,
       "IL-12 family, regulatory"),
    _a("IFNA2", "IFN-α2", ["IFN-alpha2", "IFN-alpha-2", "IFNa2", "IFN-a2", "IFNα2",
                           "interferon alpha 2"], 2.0, 10000, None, "type I interferon"),
    _a("IFNB1", "IFN-β", ["IFN-beta", "IFNb", "IFNβ", "IFN beta", "interferon beta", "IFN-b",
                          "IFN-beta1"], 1.0, 10000, None, "type I interferon"),
    _a("VEGFA", "VEGF-A", ["VEGF-A", "VEGFa"], 5.0, 10000, None, "vascular endothelial growth"),
    _a("TGFA", "TGF-α", ["TGF-alpha", "TGFa", "TGFα"], 1.0, 10000, None,
       "transforming growth factor alpha"),
    _a("TNFSF10", "TRAIL", ["TNFSF10/TRAIL", "sTRAIL"], 5.0, 10000, None, "apoptosis ligand"),
    _a("FLT3LG", "Flt-3L", ["Flt3L", "Flt3 ligand", "FLT3 ligand"], 5.0, 10000, None,
       "dendritic-cell growth factor"),
    # --- not a cytokine: a neuro-axonal damage marker measured beside panels (Simoa)
    _a("NEFL", "NfL", ["neurofilament light", "neurofilament light chain", "NF-L", "sNfL",
                       "serum NfL", "pNfL"], 0.5, 2000, None,
       "neurofilament light chain (serum, Simoa); axonal damage, not a cytokine: a log2 "
       "input of its own, never in ratios or axis scores"),
    _a("KITLG", "SCF", ["stem cell factor"], 5.0, 10000, None, "stem cell factor"),
    _a("HGF", "HGF", ["hepatocyte growth factor"], 10.0, 20000, None, "hepatocyte growth factor"),
    _a("TNFSF14", "LIGHT", ["TNFSF14/LIGHT"], 5.0, 10000, None, "TNF superfamily 14"),
    _a("TNFSF12", "TWEAK", ["TNFSF12/TWEAK"], 5.0, 10000, None, "TNF-related weak inducer of "
       "apoptosis"),
    _a("TNFSF11", "TRANCE", ["RANKL", "sRANKL", "TNFSF11/RANKL"], 5.0, 10000, None,
       "RANK ligand"),
    _a("LIF", "LIF", ["leukemia inhibitory factor"], 1.0, 10000, None, "IL-6 family cytokine"),
    _a("MIF", "MIF", ["macrophage migration inhibitory factor"], 20.0, 50000, None,
       "macrophage migration inhibitory factor"),
    _a("TNFRSF1A", "sTNF-RI", ["sTNFR1", "sTNF-R1", "TNF-R1", "TNFR1", "sTNFRI", "TNF RI"], 20.0,
       50000, None, "soluble TNF receptor 1 (not TNF)"),
    _a("TNFRSF1B", "sTNF-RII", ["sTNFR2", "sTNF-R2", "TNF-R2", "TNFR2", "sTNFRII", "TNF RII"],
       20.0, 50000, None, "soluble TNF receptor 2 (not TNF)"),
    _a("IL6R", "sIL-6Rα", ["sIL-6R", "sIL-6Ra", "IL-6R", "IL-6Rα", "IL-6Ra", "sIL6R"], 50.0,
       100000, None, "soluble IL-6 receptor alpha (not IL-6)"),
    _a("ANGPT2", "Ang-2", ["ANG2", "ANG-2", "angiopoietin-2", "angiopoietin 2"], 10.0, 20000, None,
       "angiopoietin-2, endothelial activation"),
)

# Names resolved on purpose with a note: key -> (canonical id, note). The reader warns.
_INTERPRETED: dict[str, tuple[str, str]] = {
    "IL-12": ("IL12", "read as IL-12p70 (IL12), the form most kits report; rename the column "
                      "to 'IL-12p70' or 'IL-12p40' to make it explicit"),
    "IL-17": ("IL17A", "read as IL-17A (IL-17 is its old name); rename to 'IL-17A' to make it "
                       "explicit"),
    "TGF-β": ("TGFB1", "read as TGF-β1, the isoform kits measure; rename to 'TGF-β1'"),
    "TGF-beta": ("TGFB1", "read as TGF-β1, the isoform kits measure; rename to 'TGF-β1'"),
    "IFN-α": ("IFNA2", "read as IFN-α2, the subtype multiplex kits measure; rename to 'IFN-α2'"),
    "IFN-alpha": ("IFNA2", "read as IFN-α2, the subtype multiplex kits measure; rename to "
                           "'IFN-α2'"),
    "VEGF": ("VEGFA", "read as VEGF-A; rename to 'VEGF-A'"),
}

# Names refused: key -> why (resolve_analyte returns None, the reader reports an error).
_AMBIGUOUS: dict[str, str] = {
    "IL-1": "'IL-1' could be IL-1α (IL1A) or IL-1β (IL1B); rename the column to 'IL-1α' or "
            "'IL-1β'",
    "IL-12/23": "'IL-12/23' could be IL-12p40 (IL12B) or IL-23; rename the column to "
                "'IL-12p40' or 'IL-23'",
    "MIP-1": "'MIP-1' could be MIP-1α (CCL3) or MIP-1β (CCL4); rename the column",
    "MCP": "'MCP' could be MCP-1 (CCL2), MCP-2, MCP-3 or MCP-4; rename the column",
    "IFN": "'IFN' could be IFN-γ, IFN-α2 or IFN-β; rename the column",
}

_GREEK = {"α": "a", "β": "b", "γ": "g", "δ": "d", "κ": "k", "λ": "l", "ω": "w"}
_GREEK_WORDS = re.compile(r"alpha|beta|gamma|delta|kappa|lambda|omega")
_GREEK_WORD_MAP = {"alpha": "a", "beta": "b", "gamma": "g", "delta": "d", "kappa": "k",
                   "lambda": "l", "omega": "w"}
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_HUMAN_PREFIX = re.compile(r"^\s*(?:hu|human)[\s_\-]+(?=\S)", re.IGNORECASE)
# a trailing "(...)" / "[...]" group: a unit or a Bio-Plex bead region
_TRAILING_GROUP = re.compile(r"^(?P<base>.*?\S)\s*[\(\[](?P<inner>[^\(\)\[\]]*)[\)\]]\s*$")
# a trailing "_unit" or " unit" token that looks like a concentration unit
_TRAILING_UNIT = re.compile(
    r"^(?P<base>.*?\S)[\s_]+(?P<inner>(?:[fpnuµμm]?g|mcg)\s*(?:/|_|per)?\s*(?:ml|dl|l))\s*$",
    re.IGNORECASE,
)


def normalise_name(name: str) -> str:
    """The matching key of a name: lower case, Greek spelled out as a letter, no punctuation.

    Examples
    --------
    >>> normalise_name("IFN-γ"), normalise_name("IFN gamma"), normalise_name("ifng")
    ('ifng', 'ifng', 'ifng')
    """
    s = unicodedata.normalize("NFKC", str(name)).lower()
    s = "".join(_GREEK.get(ch, ch) for ch in s)
    s = _NON_ALNUM.sub("", s)
    return _GREEK_WORDS.sub(lambda m: _GREEK_WORD_MAP[m.group(0)], s)


def split_unit(name: str) -> tuple[str, str | None]:
    """Split a column header into ``(analyte part, unit text or None)``.

    A trailing bracketed group (``IL-6 (pg/mL)``, ``IFN-γ [ng/ml]``) or a trailing unit token
    (``IL6_pgml``, ``IL-6 pg/mL``) is split off; a bead region (``IL-6 (19)``) is dropped and
    gives no unit. The group is only split when the header without it is not itself a known
    name (``IL-12(p40)`` stays whole). The unit text is returned as written; see
    :mod:`cytoresp.panels.units` to interpret it.

    Examples
    --------
    >>> split_unit("IL-17A (pg/ml)"), split_unit("IL6_pgml"), split_unit("IL-12(p40)")
    (('IL-17A', 'pg/ml'), ('IL6', 'pgml'), ('IL-12(p40)', None))
    """
    text = _HUMAN_PREFIX.sub("", str(name).strip())
    if _lookup_key(normalise_name(text)) is not None:
        return text, None
    m = _TRAILING_UNIT.match(text)
    if m:
        return m.group("base").strip(), m.group("inner").strip()
    m = _TRAILING_GROUP.match(text)
    if m:
        base, inner = m.group("base").strip(), m.group("inner").strip()
        if inner.isdigit() or not inner:  # bead region, e.g. Bio-Plex "IL-6 (19)"
            return split_unit(base)
        return base, inner
    return text, None


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, str], dict[str, Analyte], dict[str, tuple[str, str]],
                       dict[str, str]]:
    keys: dict[str, str] = {}
    by_id: dict[str, Analyte] = {}
    for a in ANALYTES:
        if a.id in by_id:
            raise RuntimeError(f"analyte registry: duplicate id {a.id}")
        by_id[a.id] = a
        for name in (a.id, a.display_name, *a.synonyms):
            k = normalise_name(name)
            if keys.get(k, a.id) != a.id:
                raise RuntimeError(f"analyte registry: {name!r} matches {keys[k]} and {a.id}")
            keys[k] = a.id
    interpreted = {normalise_name(k): v for k, v in _INTERPRETED.items()}
    ambiguous = {normalise_name(k): v for k, v in _AMBIGUOUS.items()}
    clash = (set(keys) | set(interpreted)) & set(ambiguous)
    if clash:
        raise RuntimeError(f"analyte registry: ambiguous names also registered: {clash}")
    return keys, by_id, interpreted, ambiguous


def _lookup_key(key: str) -> str | None:
    keys, _, interpreted, _ = _tables()
    hit = keys.get(key)
    if hit is None and key in interpreted:
        hit = interpreted[key][0]
    return hit


@lru_cache(maxsize=4096)
def resolve_analyte(name: str) -> str | None:
    """The canonical id a column name refers to, or None.

    Case, punctuation, Greek letters vs their names, a ``Hu``/``human`` prefix, a trailing
    unit and a bead region are ignored. Ambiguous names (``IL-1``) give None.

    Parameters
    ----------
    name : str
        A column header or analyte name.

    Returns
    -------
    str or None
        The canonical id, or None if the name is unknown or ambiguous.

    Examples
    --------
    >>> resolve_analyte("IFN-gamma [pg/mL]"), resolve_analyte("IP-10"), resolve_analyte("IL-1")
    ('IFNG', 'CXCL10', None)
    """
    if not isinstance(name, str):
        return None
    hit = _lookup_key(normalise_name(name))
    if hit is not None:
        return hit
    base, _unit = split_unit(name)
    return _lookup_key(normalise_name(base))


def interpretation(name: str) -> str | None:
    """A note when ``name`` resolves only by a documented assumption (``IL-12`` -> p70).

    Examples
    --------
    >>> interpretation("IL-12 (pg/mL)")[:25]
    'read as IL-12p70 (IL12), '
    >>> interpretation("IL12") is None
    True
    """
    _, by_id, interpreted, _ = _tables()
    for candidate in (str(name), split_unit(name)[0]):
        if candidate.strip() in by_id:  # an exact canonical id ("IL12") needs no note
            return None
        k = normalise_name(candidate)
        if k in interpreted:
            return interpreted[k][1]
    return None


def ambiguity(name: str) -> str | None:
    """Why ``name`` is refused as ambiguous (``IL-1``), or None if it is not.

    Examples
    --------
    >>> ambiguity("IL-1 (pg/ml)")[:37]
    "'IL-1' could be IL-1α (IL1A) or IL-1β"
    """
    _, _, _, ambiguous = _tables()
    for candidate in (str(name), split_unit(name)[0]):
        k = normalise_name(candidate)
        if k in ambiguous:
            return ambiguous[k]
    return None


def get_analyte(id: str) -> Analyte:
    """The registry entry of a canonical id.

    Raises
    ------
    KeyError
        If ``id`` is not a canonical id (use :func:`resolve_analyte` for other spellings).

    Examples
    --------
    >>> get_analyte("CXCL10").display_name, get_analyte("CXCL10").axis
    ('IP-10', 'IFN-response')
    """
    _, by_id, _, _ = _tables()
    try:
        return by_id[id]
    except KeyError:
        hint = resolve_analyte(id) if isinstance(id, str) else None
        extra = f" (did you mean {hint!r}?)" if hint else ""
        raise KeyError(f"{id!r} is not a canonical analyte id{extra}") from None


def display_name(id: str) -> str:
    """The display name of a canonical id, or ``id`` itself if it is not in the registry.

    Examples
    --------
    >>> display_name("TGFB1"), display_name("age")
    ('TGF-β1', 'age')
    """
    _, by_id, _, _ = _tables()
    a = by_id.get(id)
    return a.display_name if a is not None else id


def axis_members() -> dict[str, tuple[str, ...]]:
    """Axis name -> canonical ids of its members, in registry order (axes in :data:`AXES`).

    Examples
    --------
    >>> axis_members()["Treg"]
    ('IL10', 'TGFB1')
    """
    return {ax: tuple(a.id for a in ANALYTES if a.axis == ax) for ax in AXES}


def canonical_ids() -> tuple[str, ...]:
    """Every canonical id, in registry order.

    Examples
    --------
    >>> canonical_ids()[:3]
    ('IFNG', 'TNF', 'IL12')
    """
    return tuple(a.id for a in ANALYTES)


def registry_table() -> pd.DataFrame:
    """The registry as a table, one row per analyte, in registry order.

    Columns: ``id, display_name, synonyms`` (``"; "``-joined), ``lloq_pg_ml, uloq_pg_ml,
    axis, limits_source, description``.

    Examples
    --------
    >>> registry_table().set_index("id").loc["IL10", "lloq_pg_ml"]
    np.float64(0.56)
    """
    return pd.DataFrame(
        {
            "id": [a.id for a in ANALYTES],
            "display_name": [a.display_name for a in ANALYTES],
            "synonyms": ["; ".join(a.synonyms) for a in ANALYTES],
            "lloq_pg_ml": [a.lloq for a in ANALYTES],
            "uloq_pg_ml": [a.uloq for a in ANALYTES],
            "axis": [a.axis for a in ANALYTES],
            "limits_source": [a.limits_source for a in ANALYTES],
            "description": [a.description for a in ANALYTES],
        }
    )


def _num(x: float) -> str:
    return f"{x:g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def registry_markdown() -> str:
    """The registry as the markdown page ``docs/analytes.md`` (generated; do not edit by hand).

    Examples
    --------
    >>> registry_markdown().splitlines()[0]
    '# Analytes'
    """
    lines = [
        "# Analytes",
        "",
        "<!-- generated by cytoresp.panels.registry.registry_markdown(); do not edit -->",
        "",
        "The analyte registry of cytoresp (`cytoresp.panels.registry.ANALYTES`). A column of a",
        "panel file is matched to an analyte by its canonical id, its display name or any",
        "synonym below, ignoring case, spaces and punctuation; Greek letters and their names",
        "are interchangeable (`IFN-γ` = `IFN-gamma` = `IFNg`); a `Hu`/`human` prefix, a",
        "trailing unit (`IL-17A (pg/ml)`, `IFN-gamma [pg/mL]`, `IL6_pgml`) and a Bio-Plex bead",
        "region (`IL-6 (19)`) are ignored for matching (the unit is used to convert values).",
        "",
        "Canonical ids are HGNC symbols, except `IL12` = IL-12p70 and `IL12B` = IL-12p40.",
        "",
        "## Names read by assumption (with a warning)",
        "",
        "| name | read as | note |",
        "|---|---|---|",
    ]
    for name, (aid, note) in _INTERPRETED.items():
        lines.append(f"| `{name}` | `{aid}` | {_cell(note)} |")
    lines += [
        "",
        "## Names refused as ambiguous (an error that asks to rename the column)",
        "",
        "| name | why |",
        "|---|---|",
    ]
    for name, why in _AMBIGUOUS.items():
        lines.append(f"| `{name}` | {_cell(why)} |")
    lines += [
        "",
        "Receptors are never read as their ligands: `CD40` is not sCD40L, `IL-2R`/`IL-18R1`",
        "are not IL-2/IL-18, and Olink's `LAP TGF-beta-1` (latency-associated peptide) is not",
        "TGF-β1.",
        "",
        "## Default limits",
        "",
        "LLOQ/ULOQ (pg/mL) are used only when a censored cell gives no limit of its own",
        "(`< LLOQ`, `OOR <`, `>ULOQ`). `limits_source` says where they come from: the LLOQs",
        "marked *Milliplex high-sensitivity* are the manufacturer's minimum detectable",
        "concentrations reported by Numis et al., Heliyon 2021;7:e06445, Table 1; every value",
        "marked *typical* is an order-of-magnitude value for common Luminex/MSD kits, not a",
        "sourced number. Limits depend on the kit, lot, dilution and plate: put the limit in the",
        "cell (`<0.64`) or use a long file with an `lloq` column whenever you can.",
        "",
        "## Registry",
        "",
        "| id | display name | synonyms | LLOQ | ULOQ | axis | limits source | description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in ANALYTES:
        syn = ", ".join(f"`{s}`" for s in a.synonyms)
        src = "Milliplex high-sensitivity" if a.limits_source == _HS else a.limits_source
        lines.append(
            f"| `{a.id}` | {_cell(a.display_name)} | {_cell(syn)} | {_num(a.lloq)} | "
            f"{_num(a.uloq)} | {a.axis or ''} | {src} | {_cell(a.description)} |"
        )
    lines += ["", "## Axes", "", "| axis | members |", "|---|---|"]
    for ax, members in axis_members().items():
        lines.append(f"| {ax} | {', '.join(f'`{m}`' for m in members)} |")
    return "\n".join(lines) + "\n"
