"""The registry: one id per model, naming its data and architecture; retired names refused with their successor."""

import subprocess
import sys

import pytest
from conftest import REPO, subprocess_env

from vit_tutorial import VitTutorialError, build_model, preset, registry
from vit_tutorial.data import DATASETS

ARCHITECTURES = {"vit", "vit-spt-lsa", "hybrid", "hybrid-lsa", "cnn"}


def test_every_id_names_a_dataset_an_architecture_and_at_most_a_tag():
    for model_id, spec in registry.MODELS.items():
        dataset, arch = model_id.split("/")
        assert dataset in DATASETS and spec.dataset == dataset
        word, _, tag = arch.partition("+")
        assert word in ARCHITECTURES and tag in ("", "kd"), model_id
        assert ("teacher" in spec.recipe) == (tag == "kd")


def test_an_architecture_word_means_the_same_on_every_dataset():
    for model_id, spec in registry.MODELS.items():
        c, word = spec.config, spec.arch.split("+")[0]
        if word == "cnn":
            assert type(c).__name__ == "CNNConfig"
            continue
        assert c.stem == {"vit": "patch", "vit-spt-lsa": "shifted", "hybrid": "conv", "hybrid-lsa": "conv"}[word]
        assert c.lsa == word.endswith("lsa"), model_id


def test_a_taught_model_is_its_untaught_model_with_its_datasets_cnn_as_teacher():
    for model_id, spec in registry.MODELS.items():
        if "+kd" not in model_id:
            continue
        untaught = registry.MODELS.get(model_id.replace("+kd", ""))  # the hybrid with LSA ships taught only
        if untaught is not None:
            assert spec.config == untaught.config
            assert {k: v for k, v in spec.recipe.items() if k not in ("teacher", *registry.TAUGHT)} == untaught.recipe
        else:
            assert spec.recipe["epochs"] == registry.get(f"{spec.dataset}/cnn").recipe["epochs"]
        assert spec.teacher == f"{spec.dataset}/cnn" and {k: spec.recipe[k] for k in registry.TAUGHT} == registry.TAUGHT


def test_the_sample_is_its_own_dataset_with_its_own_epochs():
    """No hidden switch: the full MNIST's models train 15 epochs, the sample's as cross-validated."""
    for arch in ("vit", "hybrid", "cnn"):
        full, sample = registry.get(f"mnist/{arch}"), registry.get(f"mnist-sample/{arch}")
        assert full.config == sample.config
        assert {k: v for k, v in full.recipe.items() if k != "epochs"} == \
               {k: v for k, v in sample.recipe.items() if k != "epochs"}
    assert [registry.recipe(f"mnist-sample/{a}")["epochs"] for a in ("vit", "hybrid", "cnn")] == [160, 60, 60]
    assert registry.recipe("mnist/vit")["epochs"] == 15
    assert registry.recipe("mnist-sample/vit", quick=True)["epochs"] == registry.QUICK_EPOCHS


def test_the_books_models_keep_their_sizes():
    counts = {m: build_model(m).num_parameters() for m in registry.ids()}
    assert counts["mnist-sample/vit"] == 139_018 and counts["fashion-mnist/vit-spt-lsa"] == 813_530
    assert counts["mnist-sample/cnn"] <= counts["mnist-sample/hybrid"] < 1.6 * counts["mnist-sample/vit"]


@pytest.mark.parametrize("old, successor", [
    ("mnist", "mnist/vit"), ("fashion-mnist", "fashion-mnist/vit-spt-lsa"),
    ("fashion-mnist-plain", "fashion-mnist/vit"),
    ("fashion-mnist-spt-lsa", "fashion-mnist/vit-spt-lsa"), ("fashion-mnist-distilled", "fashion-mnist/vit+kd"),
    ("fashion-mnist-hybrid-lsa-distilled", "fashion-mnist/hybrid-lsa+kd"), ("mnist-cnn", "mnist-sample/cnn"),
])
def test_a_retired_name_is_a_one_line_error_that_names_its_successor(old, successor):
    with pytest.raises(VitTutorialError, match="retired") as e:
        preset(old)
    assert successor in str(e.value) and "\n" not in str(e.value)


def test_an_unknown_id_lists_the_datasets_models():
    with pytest.raises(VitTutorialError, match="unknown model 'fashion-mnist/vitt'; choose one of fashion-mnist/vit,"):
        registry.get("fashion-mnist/vitt")
    assert registry.default_model("fashion-mnist") == "fashion-mnist/vit-spt-lsa"  # what --dataset trains
    with pytest.raises(VitTutorialError, match="unknown dataset 'svhn'"):
        registry.default_model("svhn")


def test_models_prints_every_model_with_its_shipped_accuracy():
    from vit_tutorial import list_models

    lines = list_models()
    assert [m["id"] for m in lines] == registry.ids()
    shipped = {m["id"]: m for m in lines if m["ships"] != "no"}
    assert {"mnist-sample/vit", "fashion-mnist/vit-spt-lsa", "fashion-mnist/hybrid-lsa+kd"} <= set(shipped)
    assert all(m["test"] for m in shipped.values())
    done = subprocess.run([sys.executable, "-m", "vit_tutorial", "models", "--dataset", "mnist-sample"], cwd=REPO,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("model") and "mnist-sample/vit " in done.stdout
    assert shipped["mnist-sample/vit"]["test"] in done.stdout and "fashion-mnist" not in done.stdout
