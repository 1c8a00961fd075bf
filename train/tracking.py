"""Where MLflow writes: resolve the tracking URI and fail fast when it cannot be reached."""

from __future__ import annotations

import os
from pathlib import Path

from cytoresp.errors import TrackingError

#: Bounded retries and timeouts, so an unreachable server fails in seconds, not minutes.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


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
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure here means "store unusable"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(
            f"cannot reach the MLflow tracking store {uri}: {reason[:300]}. "
            "Check --tracking-uri / MLFLOW_TRACKING_URI, or that the server is running."
        ) from None
    return uri
