"""MLflow: the logged pyfunc returns probabilities; load_model resolves registry URIs."""

from __future__ import annotations

import numpy as np
import pytest

from cytoresp.errors import ModelIntegrityError

pytestmark = pytest.mark.slow


def test_pyfunc_returns_probabilities_and_registry_round_trip(trained, cohort, mlflow_store):
    import mlflow

    from cytoresp.models.mlflow_flavour import load_model, log_response_model
    from cytoresp.train.tracking import configure_tracking

    model, _ = trained
    configure_tracking(mlflow_store)
    frame = model.model_frame(cohort.panel)
    with mlflow.start_run():
        info = log_response_model(model, frame.head(5), registered_model_name="flavour-test")
    assert str(info.registered_model_version) == "1"
    # the signature is on float columns and the logged requirements are pinned
    inputs = info.signature.inputs.to_dict()
    assert {c["type"] for c in inputs} == {"double"}

    pyfunc = mlflow.pyfunc.load_model("models:/flavour-test/1")
    out = pyfunc.predict(frame.head(20).reset_index(drop=True))
    assert list(out.columns) == ["p_response_ifnb", "p_response_ga"]
    expected = model.predict_proba_frame(frame.head(20))
    np.testing.assert_allclose(out.to_numpy(), expected.to_numpy())

    again = load_model("models:/flavour-test/1")
    np.testing.assert_allclose(
        again.predict_proba_frame(frame.head(20)).to_numpy(), expected.to_numpy()
    )


def test_unknown_registered_model_is_a_clear_error(mlflow_store):
    from cytoresp.models.mlflow_flavour import load_model
    from cytoresp.train.tracking import configure_tracking

    configure_tracking(mlflow_store)
    with pytest.raises(ModelIntegrityError, match="models:/nope/1"):
        load_model("models:/nope/1")
