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
    paths = sorted(CONFIG_DIR.glob("*/*.yaml"))  # every generated folder
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
                                  "ressl/imagenet_mobilenet_v3_large_multicrop", "ressl/imagenet_efficientnet_b1_2crops",
                                  "cgh/stl10_same_context", "cgh/imagenet_r50_pred_multicrop_400ep"])
def test_configs_build_their_method(name):
    config = load_config(CONFIG_DIR / f"{name}.yaml", ["method.memory=64"])
    model = build_method(config)
    teachers = 2 if config["method"].get("symmetric") else 1  # symmetric: 2 crops, each weak and strong
    assert len(model.views) == teachers * (1 + len(config["views"].get("student_crops", [None])))
    assert model.views[0].size == config["views"]["teacher"]["size"]
    assert model.backbone.arch == config["model"]["arch"]


ARCH_OF = {"ResNet-18": "resnet18", "ResNet-34": "resnet34", "ResNet-50": "resnet50",
           "EfficientNet-B0": "efficientnet_b0", "EfficientNet-B1": "efficientnet_b1",
           "MobileNet-V3-Large": "mobilenet_v3_large"}


def test_table13_and_2x_backprop_rows_have_configs():
    """Every ReSSL row of Table 13 and the two "2x backprop" ReSSL rows of Table 7 are reproduced
    by exactly one config, with the row's backbone, symmetric exactly for the "2 crops" rows."""
    configs = [load_config(p) for p in sorted((CONFIG_DIR / "ressl").glob("*.yaml"))]
    published = load_published().fillna("")
    wanted = published[(published.paper == "ressl") & (published.method == "ReSSL")
                       & ((published.table == "Table 13") | published.variant.str.contains("2x backprop"))]
    assert len(wanted) == 5 * 3 + 2
    for _, r in wanted.iterrows():
        matches = [c for c in configs for ref in c["reproduces"]
                   if ref["table"] == r.table and ref.get("variant") == r.variant
                   and ref.get("backbone", "ResNet-50") == r.backbone]
        assert len(matches) == 1, (r.table, r.variant, r.backbone, len(matches))
        assert matches[0]["model"]["arch"] == ARCH_OF[r.backbone]
        assert bool(matches[0]["method"].get("symmetric")) == ("2 crops" in r.variant), (r.table, r.variant)


def test_table8_stronger_augmentation_student_crops_run_randaugment():
    """ReSSL Table 8 "stronger augmentation": 5 student crops (CLSA's sizes and scales), each
    with RandAugment(5, 10) after the MoCo v2 pipeline; the teacher's weak view has none."""
    matches = [load_config(p) for p in sorted((CONFIG_DIR / "ressl").glob("*.yaml"))
               if any(ref["table"] == "Table 8" and ref.get("variant") == "stronger augmentation"
                      for ref in load_config(p)["reproduces"])]
    assert len(matches) == 1
    small = matches[0] | {"model": {"arch": "resnet18", "stem": "imagenet"}}
    small["method"] = matches[0]["method"] | {"memory": 256, "hidden_dim": 64}
    model = build_method(small)
    teacher, *students = model.views
    assert [v.size for v in students] == [224, 192, 160, 128, 96]
    assert [v.scale[0] for v in students] == [0.2, 0.172, 0.143, 0.114, 0.086]
    assert all(v.randaugment == 5 and v.randaugment_magnitude == 10 for v in students)
    assert teacher.randaugment == 0
