"""The generated ReSSL/CGH experiment configs: up to date, loadable, and each names published rows."""
import pytest

from evaluation.published import load_published
from pretrain import make_configs
from pretrain.config import CONFIG_DIR, load_config
from pretrain.engine import build_method

KEYS = ("paper", "table", "method", "variant", "backbone", "pretrain_data", "epochs", "batch_size")


def _text(value):
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def test_committed_configs_are_what_the_generator_writes():
    assert make_configs.main(["--check"]) == 0, "run: python -m pretrain.make_configs"


def test_every_reference_names_published_rows():
    published = load_published().fillna("")
    published = published.astype({k: str for k in KEYS})
    paths = sorted((CONFIG_DIR / "ressl").glob("*.yaml")) + sorted((CONFIG_DIR / "cgh").glob("*.yaml"))
    assert len(paths) > 200
    for path in paths:
        config = load_config(path)
        assert config["scale"] == "full" and config["reproduces"], path
        for ref in config["reproduces"]:
            rows = published
            for key in KEYS:  # as the collector joins: an absent variant means the row without one
                if key in ref or key == "variant":
                    rows = rows[rows[key].map(lambda v: v.removesuffix(".0")) == _text(ref.get(key, ""))]
            assert len(rows) > 0, f"{path.name}: {ref} names no published row"


@pytest.mark.parametrize("name", ["ressl/cifar10_nopred_taus0.2_taut0.05", "ressl/imagenet_r50_multicrop",
                                  "cgh/stl10_same_context", "cgh/imagenet_r50_pred_multicrop_400ep"])
def test_configs_build_their_method(name):
    config = load_config(CONFIG_DIR / f"{name}.yaml", ["method.memory=64"])
    model = build_method(config)
    assert len(model.views) == 1 + len(config["views"].get("student_crops", [None]))
    assert model.views[0].size == config["views"]["teacher"]["size"]
