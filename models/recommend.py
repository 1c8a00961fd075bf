"""The bootstrap ensemble of the therapy heads: container, merged trees, persistence.

Each head's classifier refitted on ``B`` bootstrap resamples of that therapy's patients
(fitted by :func:`cytoresp.train.ensemble.fit_bootstrap_ensemble`). The patient report
shows the spread of each therapy's probability over the members. It is **not** used to
choose between therapies any more: refits that reuse the main head's penalty, tree count
and calibration on outcome-stratified resamples vary far less than refits of the whole
procedure would, and the interval it gave on the difference between therapies excluded 0
for 16-75% of patients when the true difference was 0 (issue 15). The therapy choice is
in :mod:`cytoresp.models.choice`.
"""

from __future__ import annotations

import gzip
import json
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.models.choice import check_level
from cytoresp.models.estimator import LinearBoostedClassifier

if TYPE_CHECKING:  # pragma: no cover
    from cytoresp.models.response_model import TherapyHead

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_N_MEMBERS",
    "BootstrapEnsemble",
    "member_margins",
]

#: Default level of the members' percentile interval (the patient report).
DEFAULT_LEVEL = 0.90
#: Default number of bootstrap refits per therapy head.
DEFAULT_N_MEMBERS = 50
_THERAPIES = ("ifnb", "ga")


# --------------------------------------------------------------------------------------
# The ensemble
# --------------------------------------------------------------------------------------
@dataclass
class BootstrapEnsemble:
    """Bootstrap refits of each therapy head's classifier.

    Parameters
    ----------
    members : dict of str to list of LinearBoostedClassifier
        Per therapy, ``B`` classifiers fitted on bootstrap resamples of that therapy's
        patients, on the main head's engineered features. All therapies have the same ``B``.
    level : float, default 0.90
        Level of the percentile interval on the difference used by default.
    seed : int
        Seed the resamples were drawn from (recorded for reproducibility).

    Examples
    --------
    :func:`~cytoresp.train.fitting.fit_response_model` fits one with
    ``TrainConfig.n_ensemble`` members (50 by default); ``model`` is a fitted model.

    >>> ens = model.ensemble
    >>> ens.therapies
    ['ifnb', 'ga']
    >>> ens.n_members == model.metadata["config"]["n_ensemble"]
    True
    """

    members: dict[str, list[LinearBoostedClassifier]]
    level: float = DEFAULT_LEVEL
    seed: int = 0
    # per therapy, the members' trees merged into one booster (built on first use)
    _merged: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: Any = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_level(self.level)
        sizes = {len(m) for m in self.members.values()}
        if len(sizes) > 1:
            raise UsageError(f"every therapy needs the same number of members, got {sizes}")
        if sizes == {0}:
            raise UsageError("a bootstrap ensemble needs at least one member per therapy")

    def __getstate__(self) -> dict[str, Any]:
        # the lock cannot be pickled or deep-copied; merged boosters are rebuilt on use
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_merged")}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._merged = {}
        self._lock = threading.Lock()

    @property
    def therapies(self) -> list[str]:
        """Therapies with members, in canonical order."""
        return [t for t in _THERAPIES if t in self.members]

    @property
    def n_members(self) -> int:
        """Number of bootstrap refits per therapy (``B``)."""
        return len(next(iter(self.members.values()))) if self.members else 0

    def margins(self, therapy: str, feats: np.ndarray) -> np.ndarray:
        """Uncalibrated log-odds of every member of ``therapy``, shape ``(B, n_rows)``.

        The same values as :func:`member_margins`, computed with one matrix product for
        the linear parts and one XGBoost call for the trees of all members together
        (:meth:`merged_booster`), which is what makes the interval affordable on every row
        of a large batch.

        Parameters
        ----------
        therapy : str
        feats : ndarray of shape (n_rows, n_features)
            The head's engineered features.
        """
        members = self.members[therapy]
        feats = np.ascontiguousarray(feats, dtype=np.float64)
        margins = _linear_margins(members, feats)
        if feats.shape[0] == 0:
            return margins
        if len(members) < 2:  # nothing to merge
            return margins + _tree_margins(members, feats)
        merged = self.merged_booster(therapy, feats)
        if merged is False:
            return margins + _tree_margins(members, feats)
        if merged is not None:
            trees = merged.inplace_predict(
                feats.astype(np.float32), predict_type="margin", missing=np.nan
            )
            margins += np.asarray(trees, dtype=np.float64).reshape(len(feats), -1).T
        return margins

    def merged_booster(self, therapy: str, probe: np.ndarray | None = None) -> Any:
        """The trees of every member of ``therapy`` in one multi-output booster.

        Output ``b`` of the merged booster's margin is member ``b``'s trees. Built once,
        then checked against the members' own predictions on up to 64 rows of ``probe``;
        if XGBoost cannot load the merged model or disagrees, ``False`` is returned (and
        cached), and the members are evaluated one by one. ``None`` when no member has
        trees.
        """
        with self._lock:
            if therapy not in self._merged:
                members = self.members[therapy]
                try:
                    merged = _merge_trees(members)
                except Exception as exc:  # noqa: BLE001 - any failure means: go member by member
                    warnings.warn(
                        f"the bootstrap ensemble's trees could not be merged ({exc}); "
                        "scoring member by member (slower)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    merged = False
                if merged not in (None, False) and probe is not None and len(probe):
                    rows = np.ascontiguousarray(probe[:64], dtype=np.float64)
                    got = merged.inplace_predict(
                        rows.astype(np.float32), predict_type="margin", missing=np.nan
                    )
                    got = np.asarray(got, dtype=np.float64).reshape(len(rows), -1).T
                    if not np.allclose(got, _tree_margins(members, rows), atol=1e-5):
                        warnings.warn(
                            "the merged trees of the bootstrap ensemble disagree with its "
                            "members; scoring member by member (slower)",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                        merged = False
                self._merged[therapy] = merged
            return self._merged[therapy]

    def probability_draws(
        self,
        heads: Mapping[str, TherapyHead],
        frame: pd.DataFrame,
        feats: Mapping[str, np.ndarray] | None = None,
    ) -> dict:
        """Calibrated P(response) of every member for every row of a model frame.

        Parameters
        ----------
        heads : mapping of str to TherapyHead
            The model's heads (their feature transformer and calibrator are used).
        frame : DataFrame
            An aligned model frame.
        feats : mapping of str to ndarray, optional
            Per therapy, the head's engineered features of ``frame`` when already
            computed (they are computed otherwise).

        Returns
        -------
        dict of str to ndarray of shape (B, n_rows)
        """
        out = {}
        for t in self.therapies:
            head = heads[t]
            x = None if feats is None else feats.get(t)
            if x is None:
                x = head.engineered(frame)
            out[t] = head.calibrator.response_probability(self.margins(t, x))
        return out

    def difference_draws(
        self,
        heads: Mapping[str, TherapyHead],
        frame: pd.DataFrame,
        feats: Mapping[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Draws of ``P(response | ifnb) - P(response | ga)``, shape ``(B, n_rows)``."""
        missing = [t for t in _THERAPIES if t not in self.members]
        if missing:
            raise UsageError(f"the bootstrap ensemble has no members for {', '.join(missing)}")
        draws = self.probability_draws(heads, frame, feats)
        return draws["ifnb"] - draws["ga"]

    # -- persistence (JSON + gzip-compressed native XGBoost, no pickle) -----------------
    def to_state(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """JSON-ready state and the tree files it refers to.

        Returns
        -------
        state : dict
            ``level``, ``seed``, ``n_members`` and per therapy the members' linear parts
            and, where they have trees, the tree file and byte offsets in it.
        files : dict of str to bytes
            ``ensemble_<therapy>.ubj.gz``: the members' XGBoost UBJSON models back to back,
            gzip-compressed (about 8 times smaller).
        """
        state: dict[str, Any] = {
            "format": "cytoresp.BootstrapEnsemble",
            "format_version": 1,
            "level": self.level,
            "seed": int(self.seed),
            "n_members": self.n_members,
            "therapies": {},
        }
        files: dict[str, bytes] = {}
        for t in self.therapies:
            blobs, offsets, linear = [], [0], []
            for est in self.members[t]:
                d = est.to_dict()
                raw = est.booster_bytes() or b""
                blobs.append(raw)
                offsets.append(offsets[-1] + len(raw))
                linear.append(d)
            entry: dict[str, Any] = {"members": linear, "file": None, "offsets": offsets}
            if offsets[-1] > 0:
                name = f"ensemble_{t}.ubj.gz"
                files[name] = gzip.compress(b"".join(blobs), compresslevel=6, mtime=0)
                entry["file"] = name
            state["therapies"][t] = entry
        return state, files

    @classmethod
    def from_state(cls, state: Mapping[str, Any], read: Any) -> BootstrapEnsemble:
        """Rebuild from :meth:`to_state`; ``read(name)`` returns a tree file's bytes.

        Raises
        ------
        ModelIntegrityError
            When the state is not a saved ensemble or is inconsistent.
        """
        from cytoresp.models.default import classifier_from_dict

        if state.get("format") != "cytoresp.BootstrapEnsemble":
            raise ModelIntegrityError("the 'ensemble' entry is not a saved bootstrap ensemble")
        if state.get("format_version") != 1:
            raise ModelIntegrityError(
                f"bootstrap ensemble format_version {state.get('format_version')!r} is not "
                "supported (expected 1)"
            )
        try:
            members: dict[str, list[LinearBoostedClassifier]] = {}
            for t, entry in state["therapies"].items():
                offsets = [int(o) for o in entry["offsets"]]
                raw = _gunzip(read(entry["file"]), offsets[-1]) if entry["file"] else b""
                if len(raw) != offsets[-1] or len(offsets) != len(entry["members"]) + 1:
                    raise ModelIntegrityError(f"the bootstrap ensemble of {t} is inconsistent")
                members[t] = [
                    classifier_from_dict(d, raw[lo:hi] if hi > lo else None)
                    for d, lo, hi in zip(entry["members"], offsets[:-1], offsets[1:], strict=True)
                ]
            return cls(members=members, level=float(state["level"]), seed=int(state["seed"]))
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise ModelIntegrityError(f"the bootstrap ensemble is malformed: {exc}") from None


def _gunzip(data: bytes, size: int) -> bytes:
    """Decompress a gzip member of known size, never inflating more than ``size + 1`` bytes.

    A crafted file (a "zip bomb") then costs no more memory than an honest one.
    """
    import zlib

    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        raw = inflate.decompress(data, max(int(size), 0) + 1)
    except zlib.error as exc:
        raise ModelIntegrityError(f"a bootstrap ensemble file is not valid gzip: {exc}") from None
    if len(raw) != size or inflate.unconsumed_tail:
        raise ModelIntegrityError(
            f"a bootstrap ensemble file does not hold the {size} bytes its model says"
        )
    return raw


def member_margins(members: Sequence[LinearBoostedClassifier], feats: np.ndarray) -> np.ndarray:
    """Uncalibrated log-odds of each member on engineered features, shape ``(B, n)``.

    Same values as ``[m.decision_function(feats) for m in members]`` (to float32 precision
    of the trees), computed with one matrix product for the linear parts and XGBoost's
    in-place prediction member by member for the trees.
    :meth:`BootstrapEnsemble.margins` gives the same values faster.
    """
    feats = np.ascontiguousarray(feats, dtype=np.float64)
    margins = _linear_margins(members, feats)
    if feats.shape[0]:
        margins += _tree_margins(members, feats)
    return margins


def _linear_margins(members: Sequence[LinearBoostedClassifier], feats: np.ndarray) -> np.ndarray:
    """The members' linear parts, shape ``(B, n)``: matrix products."""
    W = np.stack([m.linear_coef_ / m.linear_scale_ for m in members])  # (B, p)
    WM = W * np.stack([m.linear_mean_ for m in members])
    intercept = np.array([m.linear_intercept_ for m in members])
    used = np.flatnonzero(W.any(axis=0))  # lasso members leave most features out
    W, WM, feats = W[:, used], WM[:, used], feats[:, used]
    present = np.isfinite(feats)
    # Standardised term (x - mean) / scale * coef, a missing x contributing nothing.
    # Computed as (n, B), C-ordered, and returned as its (B, n) view: the products run on
    # contiguous rows and each row's B draws stay side by side for the quantiles.
    margins = np.where(present, feats, 0.0) @ W.T
    margins += intercept - WM.sum(axis=1)
    gaps = np.flatnonzero(~present.all(axis=1))  # rows with a missing feature
    if len(gaps):
        margins[gaps] += (~present[gaps]).astype(np.float64) @ WM.T
    return margins.T


def _tree_margins(members: Sequence[LinearBoostedClassifier], feats: np.ndarray) -> np.ndarray:
    """The members' trees, shape ``(B, n)``, one XGBoost call per member."""
    out = np.zeros((len(members), feats.shape[0]))
    if not len(members):
        return out
    f32 = feats.astype(np.float32)
    zeros = np.zeros(feats.shape[0], dtype=np.float32)
    for i, m in enumerate(members):
        if m.booster_ is not None:
            out[i] = m.booster_.inplace_predict(
                f32, predict_type="margin", base_margin=zeros, missing=np.nan
            )
    return out


def _merge_trees(members: Sequence[LinearBoostedClassifier]) -> Any:
    """One XGBoost booster whose output ``b`` is the sum of member ``b``'s trees.

    The members' trees (XGBoost JSON) become the trees of a multi-output model with one
    output per member and a zero intercept; ``None`` when no member has trees.
    """
    import xgboost as xgb

    per_member, template = [], None
    for m in members:
        if m.booster_ is None:
            per_member.append([])
            continue
        model = json.loads(m.booster_.save_raw("json"))
        template = template or model
        per_member.append(model["learner"]["gradient_booster"]["model"]["trees"])
    if template is None:
        return None
    B = len(members)
    trees: list[dict] = []
    info: list[int] = []
    indptr = [0]
    for k in range(max(len(p) for p in per_member)):  # boosting round k of every member
        for b, member_trees in enumerate(per_member):
            if k < len(member_trees):
                trees.append({**member_trees[k], "id": len(trees)})
                info.append(b)
        indptr.append(len(trees))
    learner = template["learner"]
    booster_model = learner["gradient_booster"]["model"]
    booster_model.update(
        trees=trees,
        tree_info=info,
        iteration_indptr=indptr,
        gbtree_model_param={"num_parallel_tree": "1", "num_trees": str(len(trees))},
    )
    learner["learner_model_param"].update(
        base_score="[" + ",".join(["0"] * B) + "]", boost_from_average="0", num_class=str(B)
    )
    learner["objective"] = {
        "name": "multi:softprob",
        "softmax_multiclass_param": {"num_class": str(B)},
    }
    learner["attributes"] = {}
    merged = xgb.Booster()
    merged.load_model(bytearray(json.dumps(template).encode("utf-8")))
    merged.set_param({"nthread": 1})
    return merged
