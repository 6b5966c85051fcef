"""Config overrides and the YAML round trip of a resolved config."""
import pytest

from pretrain.config import CONFIG_DIR, ConfigError, _load, apply_overrides, dump_config, load_config


def test_overrides_parse_yaml_literals_and_exponent_floats():
    config = apply_overrides({"optim": {"name": "lars"}}, [
        "optim.weight_decay=5e-4", "optim.base_lr=1.0e-3", "optim.max_steps=3", "optim.name=sgd",
        "views.default.scale=[0.2, 1]", "train.out_dir=runs/x", "monitor=null", "a.b.c=1E6"])
    assert config["optim"] == {"name": "sgd", "weight_decay": 5e-4, "base_lr": 1e-3, "max_steps": 3}
    assert isinstance(config["optim"]["weight_decay"], float)
    assert config["views"]["default"]["scale"] == [0.2, 1]
    assert config["train"]["out_dir"] == "runs/x" and config["monitor"] is None
    assert config["a"]["b"]["c"] == 1e6


@pytest.mark.parametrize("bad", ["optim.lr", "=3"])
def test_malformed_override_names_itself(bad):
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, [bad])


def test_override_into_a_scalar_is_an_error():
    with pytest.raises(ConfigError, match="'optim' is not a mapping"):
        apply_overrides({"optim": 3}, ["optim.lr=0.1"])


def test_resolved_config_round_trips():
    config = load_config(CONFIG_DIR / "ressl_smoke.yaml", ["optim.weight_decay=1e-5"])
    assert _load(dump_config(config)) == config
