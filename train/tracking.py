"""Where MLflow writes: resolve the tracking URI and fail fast when it cannot be reached."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from cytoresp.errors import TrackingError
from cytoresp.train.locking import retry_if_locked, store_lock

#: Bounded retries and timeouts, so an unreachable server fails in seconds, not minutes.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
#: The reachability check at start-up is tighter still: 5 s per attempt, one retry, so an
#: unreachable or silent server is reported in about 11 s at most.
PREFLIGHT_TIMEOUT_S = 5
PREFLIGHT_RETRIES = 1


@contextlib.contextmanager
def _preflight_http(uri: str) -> Iterator[None]:
    """Temporarily tighten MLflow's HTTP timeout and retries (read at request time)."""
    if not uri.startswith(("http://", "https://")):
        yield
        return
    saved = {k: os.environ.get(k) for k in HTTP_DEFAULTS}

    def tighter(key: str, cap: int) -> str:
        try:
            return str(min(int(float(os.environ.get(key, cap))), cap))
        except ValueError:
            return str(cap)

    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = tighter(
        "MLFLOW_HTTP_REQUEST_TIMEOUT", PREFLIGHT_TIMEOUT_S
    )
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = tighter(
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES", PREFLIGHT_RETRIES
    )
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _forget_active_experiment() -> None:
    """Undo ``mlflow.set_experiment`` of another store in this process.

    MLflow keeps the active experiment id in a global (and in ``MLFLOW_EXPERIMENT_ID``)
    across ``set_tracking_uri``; a run started on the new store would then look for an
    experiment id that exists only in the old one ("No Experiment with id=1 exists").
    """
    from mlflow.tracking import fluent

    active = getattr(fluent, "_active_experiment_id", None)
    if active is None:
        return
    fluent._active_experiment_id = None
    if os.environ.get("MLFLOW_EXPERIMENT_ID") == str(active):
        del os.environ["MLFLOW_EXPERIMENT_ID"]


def _reason(exc: BaseException) -> str:
    """A one-line reason for a failed connection, without urllib3's noise."""
    text = str(exc).strip()
    low = text.lower()
    if "connection refused" in low or "failed to establish a new connection" in low:
        return "connection refused (nothing listens at that address)"
    if "timed out" in low or "timeout" in low:
        return f"no answer within {PREFLIGHT_TIMEOUT_S} s"
    if any(k in low for k in ("name or service not known", "nodename nor", "name resolution")):
        return "unknown host name"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the cwd.

    The default is written out explicitly (MLflow's own default) so that a stray
    ``./mlruns`` folder cannot silently switch MLflow to its disabled file store.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        uri = f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    return uri


def configure_tracking(tracking_uri: str | None = None) -> str:
    """Point MLflow at the resolved store, check it answers, and return its URI.

    Raises
    ------
    TrackingError
        If the store cannot be reached or opened; the message names the URI.
    """
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    if mlflow.get_tracking_uri() != uri:
        _forget_active_experiment()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        # under the store's lock: the first process to open a new sqlite store creates
        # and migrates its tables, which concurrent processes must not do at once
        with store_lock(uri), _preflight_http(uri):
            retry_if_locked(MlflowClient(tracking_uri=uri).search_experiments, max_results=1)
    except TrackingError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here means "store unusable"
        raise TrackingError(
            f"cannot reach the MLflow tracking store {uri}: {_reason(exc)}. "
            "Check --tracking-uri / MLFLOW_TRACKING_URI, or that the server is running."
        ) from None
    return uri
