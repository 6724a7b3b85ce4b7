"""benchmarks/cv_recipes.py: cross-validating recipes on the offline sample, teachers trained per fold."""

import json

import numpy as np
import pytest
import torch
from conftest import benchmark_module

from vit_tutorial import config

cv = benchmark_module("cv_recipes")


def test_a_candidate_sorts_its_changes_into_model_and_recipe():
    c = cv.Candidate.parse("taught=mnist-hybrid,lsa=True,teacher=mnist-cnn,distill=soft,distill_weight=0.7,epochs=9")
    assert (c.label, c.preset) == ("taught", "mnist-hybrid")
    assert c.model_changes == {"lsa": True}
    assert c.recipe_changes == {"teacher": "mnist-cnn", "distill": "soft", "distill_weight": 0.7, "epochs": 9}
    r = c.recipe()
    assert r["epochs"] == 9 and r["augment"] == config.RECIPES["mnist-hybrid"]["augment"]
    # the same candidate has the same key; another change, another key
    assert c.key(3) == cv.Candidate.parse(cv.args_of(c)).key(3) != cv.Candidate.parse("taught=mnist-hybrid").key(3)
    assert c.key(3) != c.key(5)


@pytest.mark.parametrize("text, words", [
    ("mnist-hybrid", "a candidate is LABEL=PRESET"),
    ("a=mnist-hybrid,depth", "a change is FIELD=VALUE"),
    ("a=mnist-hybrid,dept=3", "'dept' is neither a field of the mnist-hybrid preset nor a recipe setting"),
    ("a=mnist-vit", "unknown preset 'mnist-vit'"),
    ("a=mnist,teacher=mnist-cn", "unknown preset 'mnist-cn'"),
])
def test_a_bad_candidate_is_one_line_and_exit_2(text, words, capsys):
    assert cv.main([text]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err


def test_a_teacher_is_trained_per_fold_and_results_are_read_back(tmp_path, monkeypatch, capsys):
    # one-epoch recipes, so that the test takes seconds: the teacher and the students alike
    monkeypatch.setitem(config.SAMPLE_EPOCHS, "mnist-cnn", 1)
    common = ["--folds", "2", "--data-root", str(tmp_path / "data"), "--cache", str(tmp_path / "cv"),
              "--json", str(tmp_path / "out.json")]
    plain = "plain=mnist,depth=1,epochs=1"
    taught = "taught=mnist,depth=1,epochs=1,teacher=mnist-cnn,distill=soft"
    cnn = "cnn=mnist-cnn,epochs=1"
    assert cv.main([plain, taught, cnn, *common]) == 0
    out = capsys.readouterr().out
    assert "teacher:mnist-cnn " in out and "taught vs plain: right for taught only" in out
    bits = json.loads((tmp_path / "out.json").read_text())
    assert set(bits) == {"plain", "taught", "cnn", "teacher:mnist-cnn"} and all(len(b) == 4500 for b in bits.values())
    # the CNN candidate is trained exactly as its teacher was (same folds, seeds and recipe): same answers
    assert bits["cnn"] == bits["teacher:mnist-cnn"]
    assert len(list((tmp_path / "cv" / "teachers").glob("mnist-cnn-*-fold*.pt"))) == 2
    # the teacher made a difference: its student does not give the plain model's answers
    assert bits["taught"] != bits["plain"]
    # asked again, every result is read back, not trained
    assert cv.main([plain, taught, cnn, *common]) == 0
    again = capsys.readouterr().out
    assert again.count("read back") == 3 and "teacher:" not in again
    assert json.loads((tmp_path / "out.json").read_text()) == {k: bits[k] for k in ("plain", "taught", "cnn")}


def test_cv_epochs_folds_are_those_of_cv_recipes(tmp_path):
    pool, folds = cv.sample_pool_and_folds(3, tmp_path / "data")
    assert len(pool) == 4500 and [len(b) for _, b in folds] == [1500, 1500, 1500]
    held_out = torch.cat([torch.as_tensor(b) for _, b in folds]).sort().values
    assert torch.equal(held_out, torch.arange(4500))  # every digit scored exactly once
    for train, test in folds:
        assert not set(train.tolist()) & set(test.tolist())
        assert torch.bincount(pool.labels[torch.as_tensor(test)]).tolist() == [150] * 10  # class-balanced


def test_another_split_seed_draws_other_folds_and_keys(tmp_path):
    pool, first = cv.sample_pool_and_folds(3, tmp_path / "data")
    _, second = cv.sample_pool_and_folds(3, tmp_path / "data", split_seed=1)
    assert [len(b) for _, b in second] == [1500, 1500, 1500]
    assert torch.equal(torch.cat([torch.as_tensor(b) for _, b in second]).sort().values, torch.arange(4500))
    assert not any(np.array_equal(a, b) for (_, a), (_, b) in zip(first, second))
    for _, test in second:
        assert torch.bincount(pool.labels[torch.as_tensor(test)]).tolist() == [150] * 10
    c = cv.Candidate.parse("a=mnist-hybrid,teacher=mnist-cnn")
    assert c.key(3) == c.key(3, 0) != c.key(3, 1) != c.key(3, 2)
    # split seed 0 trains fold k from seed k, as before the option; other splits from seeds not used by it
    assert [cv.fold_seed(k, 3, 0) for k in range(3)] == [0, 1, 2]
    assert [cv.fold_seed(k, 3, 1) for k in range(3)] == [3, 4, 5]


def test_a_taught_candidate_on_another_split_gets_its_own_folds_teachers(tmp_path, monkeypatch, capsys):
    # fold k of split seed 1 trains from seed k + 2 (two folds): the teacher list must be indexed by the fold
    monkeypatch.setitem(config.SAMPLE_EPOCHS, "mnist-cnn", 1)
    common = ["--folds", "2", "--data-root", str(tmp_path / "data"), "--cache", str(tmp_path / "cv")]
    taught = "taught=mnist,depth=1,epochs=1,teacher=mnist-cnn,distill=soft"
    cnn = "cnn=mnist-cnn,epochs=1"
    for split_seed in (0, 1):
        out_json = tmp_path / f"split{split_seed}.json"
        assert cv.main([taught, cnn, *common, "--split-seed", str(split_seed), "--json", str(out_json)]) == 0
        assert "teacher:mnist-cnn " in capsys.readouterr().out
    first, second = (json.loads((tmp_path / f"split{s}.json").read_text()) for s in (0, 1))
    # each split's CNN candidate is trained as that split's teachers were, and each split has its own teachers
    assert first["cnn"] == first["teacher:mnist-cnn"] and second["cnn"] == second["teacher:mnist-cnn"]
    assert first["teacher:mnist-cnn"] != second["teacher:mnist-cnn"]
    assert len(list((tmp_path / "cv" / "teachers").glob("mnist-cnn-*-fold*.pt"))) == 4


def test_an_interrupted_run_starts_again_at_the_fold_it_was_training(tmp_path, monkeypatch, capsys):
    common = ["--folds", "3", "--data-root", str(tmp_path / "data"), "--json", str(tmp_path / "out.json")]
    plain = "plain=mnist,depth=1,epochs=1"
    assert cv.main([plain, *common, "--cache", str(tmp_path / "whole")]) == 0
    uninterrupted = json.loads((tmp_path / "out.json").read_text())["plain"]
    assert capsys.readouterr().out.count("held-out digits, ") == 3  # a line per fold as it is scored

    real_fit, calls = cv.fit, []

    def fit_stopped_in_fold_two(*args, **kwargs):  # as if Ctrl-C came while the second fold trained
        calls.append(kwargs["seed"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(cv, "fit", fit_stopped_in_fold_two)
    cache = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        cv.main([plain, *common, "--cache", str(cache)])
    assert [p.name.split("-")[-1] for p in cache.glob("*-fold*.json")] == ["fold0.json"]
    calls.clear()
    monkeypatch.setattr(cv, "fit", lambda *a, **k: (calls.append(k["seed"]), real_fit(*a, **k))[1])
    assert cv.main([plain, *common, "--cache", str(cache)]) == 0
    assert calls == [1, 2] and "fold 1/3: " in capsys.readouterr().out  # fold 0 read back, not trained
    assert json.loads((tmp_path / "out.json").read_text())["plain"] == uninterrupted
    assert not list(cache.glob("*-fold*.json")) and len(list(cache.glob("*.json"))) == 1  # the whole result kept


@pytest.mark.parametrize("content", ['{"correct": "10"}', "not json", '{"answers": "1"}'])
def test_a_damaged_kept_result_is_one_line_and_exit_2(tmp_path, content, capsys):
    plain = cv.Candidate.parse("plain=mnist,depth=1,epochs=1")
    (tmp_path / "cv").mkdir()
    (tmp_path / "cv" / f"{plain.key(3)}.json").write_text(content)
    args = ["plain=mnist,depth=1,epochs=1", "--data-root", str(tmp_path / "data"), "--cache", str(tmp_path / "cv")]
    assert cv.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "delete it to train again" in err and "\n" not in err
