"""The classifier each therapy head ends in, and the other classifiers a config can choose.

``TrainConfig.model`` is a table of the classifier's parameters; its ``"classifier"`` key
names which classifier (:data:`CLASSIFIERS`; an empty table is :data:`DEFAULT_CLASSIFIER`,
a table of parameters without the key is ``"linear_boosted"``).
:func:`default_classifier` is what ``make_head(TrainConfig())`` ends in, for users who
benchmark it on their own feature matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cytoresp.errors import UsageError
from cytoresp.models.estimator import LinearBoostedClassifier
from cytoresp.models.superlearner import SuperLearnerClassifier

__all__ = [
    "CLASSIFIERS",
    "DEFAULT_CLASSIFIER",
    "classifier_from_dict",
    "default_classifier",
    "make_classifier",
]

#: Classifiers a training config can name in ``model = {"classifier": ...}``.
CLASSIFIERS: dict[str, type] = {
    "linear_boosted": LinearBoostedClassifier,
    "superlearner": SuperLearnerClassifier,
}
#: The classifier of a head when the config names none (docs/methods.md, "Default model").
DEFAULT_CLASSIFIER = "superlearner"


def make_classifier(params: Mapping[str, Any] | None = None, random_state: int | None = None):
    """An unfitted classifier from a config's ``model`` table.

    Parameters
    ----------
    params : mapping, optional
        ``"classifier"`` (a name in :data:`CLASSIFIERS`) and that classifier's parameters.
        Empty: :data:`DEFAULT_CLASSIFIER` with its defaults. Parameters without a
        ``"classifier"``: the linear-boosted classifier's (configs written before the
        super learner keep their meaning).
    random_state : int, optional
        Seed (overrides one in ``params``; 0 when neither gives one).

    Raises
    ------
    UsageError
        If the classifier is unknown or a parameter is not one of its parameters.

    Examples
    --------
    >>> make_classifier({"classifier": "superlearner", "candidates": ["ridge", "xgb"]}, 3)
    SuperLearnerClassifier(candidates=['ridge', 'xgb'], random_state=3)
    >>> make_classifier({"classifier": "forest"})
    Traceback (most recent call last):
    ...
    cytoresp.errors.UsageError: model classifier must be one of linear_boosted, ...; got 'forest'
    """
    params = dict(params or {})
    # a table of parameters that names no classifier was written for the linear-boosted
    # classifier (the only one before the super learner): it keeps meaning that
    name = params.pop("classifier", "linear_boosted" if params else DEFAULT_CLASSIFIER)
    if name not in CLASSIFIERS:
        raise UsageError(
            f"model classifier must be one of {', '.join(CLASSIFIERS)}; got {name!r}"
        )
    cls = CLASSIFIERS[name]
    if random_state is not None:
        params["random_state"] = int(random_state)
    accepted = set(cls().get_params())
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise UsageError(
            f"model: unknown parameter(s) {', '.join(unknown)} for classifier {name!r}; "
            f"known: {', '.join(sorted(accepted))}"
        )
    est = cls(**params)
    # values too, not only names, so that a config is refused when it is read, not at the
    # first fit inside cross-validation
    est._validate_params()
    if hasattr(est, "check_candidates"):
        est.check_candidates()
    return est


def default_classifier(random_state: int | None = None):
    """The unfitted classifier each therapy head ends in (``make_head(TrainConfig())``).

    It takes the engineered feature matrix (missing values as NaN) and 0/1 labels,
    follows the scikit-learn API (``fit``, ``predict_proba``, ``decision_function`` in
    log-odds, ``clone``), and gives exact additive contributions (``contributions``).
    Use it to benchmark cytoresp's model on your own features, as
    ``benchmarks/quality.py`` does.

    Parameters
    ----------
    random_state : int, optional
        Seed of its inner folds and subsampling (0 when None).

    Examples
    --------
    >>> from sklearn.base import clone
    >>> clf = default_classifier(random_state=1)
    >>> clone(clf).get_params()["random_state"]
    1
    """
    return make_classifier({}, random_state)


def classifier_from_dict(state: dict[str, Any], trees: bytes | None):
    """A fitted classifier from its ``to_dict`` state and its trees' bytes.

    The state's ``"class"`` names the classifier; states without it (every model saved
    before the super learner) are a LinearBoostedClassifier's.

    Raises
    ------
    ValueError
        If the state names a classifier this version does not know.
    """
    kinds = {cls.__name__: cls for cls in CLASSIFIERS.values()}
    kind = state.get("class", "LinearBoostedClassifier")
    if kind not in kinds:
        raise ValueError(f"unknown classifier {kind!r} (a newer cytoresp saved this model?)")
    return kinds[kind].from_dict(state, trees)
