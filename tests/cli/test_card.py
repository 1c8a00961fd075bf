"""The model card (models/card.py) and ``cytoresp card --model MODEL``."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from cytoresp.cli import main
from cytoresp.models.card import CARD_FILE, render_card
from cytoresp.models.persistence import MANIFEST, sha256_file
from cytoresp.models.response_model import ResponseModel


def test_every_saved_model_folder_holds_its_card_under_the_manifest(model_dir):
    card = (model_dir / CARD_FILE).read_text(encoding="utf-8")
    manifest = json.loads((model_dir / MANIFEST).read_text())
    assert manifest["files"][CARD_FILE] == sha256_file(model_dir / CARD_FILE)
    # built from what the model stores: the loaded model renders the very same card
    assert render_card(ResponseModel.load(model_dir)) == card


def test_card_covers_the_tripod_ai_items_with_the_models_numbers(trained, model_dir):
    model, reports = trained
    card = (model_dir / CARD_FILE).read_text(encoding="utf-8")
    for section in ("## Verdict against the baselines", "## Intended use and users",
                    "## Training data", "## The model", "## Evaluation", "## Calibration",
                    "## Therapy choice (heterogeneity test)", "## Limits"):
        assert section in card
    assert "## Not recorded by this model" not in card  # trained by this cytoresp
    for report in reports.values():
        m = report.metrics
        # the cross-validated AUC with its interval, the baselines, the paired difference
        auc = m["roc_auc"]
        assert f"{auc.value:.3f} ({auc.lower:.3f} to {auc.upper:.3f})" in card
        diff = report.differences["logistic"]
        assert f"{diff.value:+.3f} (95% CI {diff.lower:+.3f} to {diff.upper:+.3f})" in card
        prevalence = m["prevalence"]
        assert f"| {report.n} | {report.n_responders} | {prevalence.value:.3f}" in card
    data = model.metadata["training_data"]
    share = data["overall"]["below"]
    assert 0 < share < 1 and f"{100 * share:.1f}% below the lower limit" in card
    assert "cross-fitted propensity ROC AUC" in card  # the assignment diagnostics
    assert model.choice is not None and model.choice.summary() in card


def test_card_command_prints_the_stored_card(model_dir, tmp_path, capsys):
    assert main(["card", "--model", str(model_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.out == (model_dir / CARD_FILE).read_text(encoding="utf-8")
    out = tmp_path / "card.md"
    assert main(["card", "--model", str(model_dir), "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == captured.out


def _without_card(model_dir, dest):
    """A copy of the model folder as cytoresp wrote it before model cards existed."""
    shutil.copytree(model_dir, dest)
    (dest / CARD_FILE).unlink()
    manifest = json.loads((dest / MANIFEST).read_text())
    del manifest["files"][CARD_FILE]
    (dest / MANIFEST).write_text(json.dumps(manifest))
    return dest


def test_card_of_an_old_folder_is_built_from_what_the_model_stores(model_dir, tmp_path, capsys):
    old = _without_card(model_dir, tmp_path / "old")
    assert main(["card", "--model", str(old)]) == 0
    captured = capsys.readouterr()
    assert captured.out == (model_dir / CARD_FILE).read_text(encoding="utf-8")


def test_card_of_a_model_storing_little_says_what_is_missing(trained):
    model, _ = trained
    bare = dataclasses.replace(model, metadata={"n_training": model.metadata["n_training"]})
    card = render_card(bare)
    assert "## Not recorded by this model" in card
    assert "the training data summary" in card and "the training configuration" in card
    assert "**not tested** against the baselines" in card


@pytest.mark.parametrize(
    "change, code, message",
    [
        (lambda d: (d / CARD_FILE).write_text("# a better model\n"), 2, "was modified"),
        (lambda d: shutil.rmtree(d), 2, "no model at"),
    ],
)
def test_card_command_refuses_a_tampered_or_missing_model(
    model_dir, tmp_path, capsys, change, code, message
):
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    change(copy)
    assert main(["card", "--model", str(copy)]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in err


def test_predict_warns_for_each_head_that_did_not_beat_its_baselines(trained, tmp_path, capsys):
    from cytoresp.datasets import simulate_cohort
    from cytoresp.models.verdict import verdict_to_dict

    model, _ = trained
    meta = json.loads(json.dumps(model.metadata))
    for t, lower in (("ifnb", 0.01), ("ga", -0.02)):
        key = f"{t}_auc_diff_vs_logistic"
        meta["cv_metrics"][t] |= {key: lower + 0.05, f"{key}_lower": lower,
                                  f"{key}_upper": lower + 0.1}
    meta["baseline_verdict"] = verdict_to_dict(meta)
    folder = tmp_path / "m"
    dataclasses.replace(model, metadata=meta).save(folder)
    panel = tmp_path / "new.csv"
    simulate_cohort(20, seed=4).panel.to_csv(panel, index=False)
    out = tmp_path / "p.csv"
    assert main(["predict", "--model", str(folder), "--input", str(panel),
                 "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert ("the ga head did not beat a plain logistic regression in cross-validation; "
            "treat its numbers with caution") in err
    assert "the ifnb head did not beat" not in err
    assert "- glatiramer acetate: **did not beat" in (folder / CARD_FILE).read_text()


def test_user_text_in_the_card_is_inert_markdown(trained):
    """Outcome names, column names and values come from the user's files and config: a
    Markdown viewer must not read them as HTML, links or code-span breaks."""
    model, _ = trained
    evil = '<img src=x onerror="alert(1)"> [click](http://x) `rm -rf` |'
    meta = {**model.metadata, "outcome_name": evil,
            "config": {**model.metadata["config"], "label": evil, "positive": "a`|b",
                       "select_rows": {"Time`point": "<b>T0</b>"}}}
    card = render_card(dataclasses.replace(model, metadata=meta))
    import re

    outside_code = re.sub(r"`[^`\n]*`", "", card)
    assert "<img" not in outside_code.replace("\\<img", "")
    assert "<b>" not in outside_code and "](http" not in outside_code.replace("\\](http", "")
    assert "\\[click\\](http://x)" in card  # escaped outside code spans
    # inside a code span (shown literally): no backtick to break out, pipes escaped
    assert "`<img src=x onerror=\"alert(1)\"> [click](http://x) 'rm -rf' \\|`" in card
    assert "`a'\\|b`" in card and "`Time'point` = `<b>T0</b>`" in card
