"""The classifier each therapy head ends in, and the other classifiers a config can choose.

``TrainConfig.model`` is a table of the classifier's parameters; its ``"classifier"`` key
names which classifier (:data:`CLASSIFIERS`, default :data:`DEFAULT_CLASSIFIER`).
:func:`default_classifier` is what ``make_head(TrainConfig())`` ends in, for users who
benchmark it on their own feature matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cytoresp.errors import UsageError
from cytoresp.models.estimator import LinearBoostedClassifier
from cytoresp.models.superlearner import SuperLearnerClassifier

__all__ = ["CLASSIFIERS", "DEFAULT_CLASSIFIER", "default_classifier", "make_classifier"]

#: Classifiers a training config can name in ``model = {"classifier": ...}``.
CLASSIFIERS: dict[str, type] = {
    "linear_boosted": LinearBoostedClassifier,
    "superlearner": SuperLearnerClassifier,
}
#: The classifier of a head when the config names none (docs/methods.md, "Default model").
DEFAULT_CLASSIFIER = "linear_boosted"


def make_classifier(params: Mapping[str, Any] | None = None, random_state: int | None = None):
    """An unfitted classifier from a config's ``model`` table.

    Parameters
    ----------
    params : mapping, optional
        ``"classifier"`` (a name in :data:`CLASSIFIERS`) and that classifier's parameters.
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
    name = params.pop("classifier", DEFAULT_CLASSIFIER)
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
    return cls(**params)


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
