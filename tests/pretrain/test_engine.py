"""The engine on the generated ImageFolder shapes: a smoke run, exact resume, NaN stop."""
import csv

import pytest
import torch

from pretrain import checkpoint as ckpt
from pretrain.config import CONFIG_DIR, ConfigError, load_config
from pretrain.engine import NonFiniteLoss, train


def _config(generated, out_dir, smoke="mocov2_smoke", **extra):
    monitor = [] if any(k.startswith("monitor.") for k in extra) else ["monitor=null"]
    overrides = [f"data.root={generated['imagefolder']}", f"train.out_dir={out_dir}", *monitor,
                 "optim.batch_size=16", "optim.max_steps=6", "method.queue_size=64",
                 "method.hidden_dim=64", "train.checkpoint_every=3", "train.quiet=true",
                 "train.deterministic=true", *[f"{k}={v}" for k, v in extra.items()]]
    return load_config(CONFIG_DIR / f"{smoke}.yaml", overrides)


def _losses(run_dir):
    with open(run_dir / "log.csv") as f:
        return [(row["step"], row["loss"]) for row in csv.DictReader(f)]


@pytest.mark.parametrize("smoke,bn", [("mocov2_smoke", "global"),
                                      ("mocov2_smoke", "shuffle"),  # shuffle-BN: the key permutation replays too
                                      ("lewel_m_smoke", "shuffle"), ("lewel_b_smoke", "eman")])
def test_killed_and_resumed_run_equals_uninterrupted(generated, tmp_path, killed_run, smoke, bn):
    extra = {"smoke": smoke, "method.bn": bn, "method.bn_splits": 4}
    train(_config(generated, tmp_path / "a", **extra))
    reference = _losses(tmp_path / "a")
    assert [s for s, _ in reference] == [str(i) for i in range(1, 7)]

    killed_run(_config(generated, tmp_path / "b", **extra), 3)
    assert ckpt.load(tmp_path / "b" / "checkpoint.pth")["step"] == 3
    train(_config(generated, tmp_path / "b", **extra), resume="auto")

    assert _losses(tmp_path / "b") == reference
    a = ckpt.load(tmp_path / "a" / "checkpoint.pth")["models"]["method"]
    b = ckpt.load(tmp_path / "b" / "checkpoint.pth")["models"]["method"]
    assert a.keys() == b.keys()
    for key in a:  # weights, momentum encoder and queue: bitwise equal
        assert torch.equal(a[key], b[key]), key


def test_nan_loss_stops_with_last_good_checkpoint(generated, tmp_path, monkeypatch):
    from pretrain.methods import mocov2

    real = mocov2.info_nce
    calls = {"n": 0}

    def nan_from_step_5(*args):
        calls["n"] += 1
        loss = real(*args)
        return loss * float("nan") if calls["n"] >= 5 else loss

    monkeypatch.setattr(mocov2, "info_nce", nan_from_step_5)
    with pytest.raises(NonFiniteLoss, match=r"loss is nan at step 4.*checkpoint.pth \(present\)"):
        train(_config(generated, tmp_path / "run"))
    state = ckpt.load(tmp_path / "run" / "checkpoint.pth")
    assert state["step"] == 3
    model, _ = ckpt.load_backbone(tmp_path / "run" / "checkpoint.pth")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_ema_method_without_ema_block_is_an_error_naming_it(generated, tmp_path):
    """No silent default momentum: an EMA-using config must state its `ema` block."""
    with pytest.raises(ConfigError, match="no `ema` block"):
        train(_config(generated, tmp_path / "run", ema="null"))
    assert not (tmp_path / "run" / "log.csv").exists()


def test_missing_dataset_path_is_named(tmp_path):
    config = load_config(CONFIG_DIR / "mocov2_smoke.yaml", [f"data.root={tmp_path / 'nowhere'}",
                                                            f"train.out_dir={tmp_path / 'run'}"])
    with pytest.raises(Exception, match="nowhere"):
        train(config)


def test_byol_smoke_run_exports_backbone(generated, tmp_path):
    config = load_config(CONFIG_DIR / "byol_smoke.yaml", [
        f"data.root={generated['imagefolder']}", f"train.out_dir={tmp_path / 'byol'}", "optim.batch_size=16",
        "monitor=null",
        "optim.max_steps=2", "method.hidden_dim=64", "train.quiet=true"])
    path = train(config)
    model, meta = ckpt.load_backbone(path)
    assert meta["method"] == "byol" and meta["arch"] == config["model"]["arch"] == "resnet18_w16"
    assert (meta["config"], meta["scale"], meta["reproduces"]) == (config["name"], config["scale"], [])
    losses = [float(loss) for _, loss in _losses(tmp_path / "byol")]
    assert len(losses) == 2 and all(0 <= v <= 8 for v in losses)  # two summed terms, each in [0, 4]


def test_knn_monitor_writes_monitor_csv(generated, tmp_path):
    config = _config(generated, tmp_path / "mon", **{"optim.max_steps": 2, "monitor.every_steps": 1,
                                                     "monitor.k": 5, "monitor.temperature": 0.07})
    train(config)
    with open(tmp_path / "mon" / "monitor.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert all(0.0 <= float(r["knn_top1"]) <= 100.0 for r in rows) and rows[0]["k"] == "5"
    # a fresh run in the same folder starts a new monitor.csv (not appended to the old one)
    train(config)
    with open(tmp_path / "mon" / "monitor.csv") as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["1", "2"]


def test_cached_data_trains_exactly_as_data_decoded_at_every_step(generated, tmp_path):
    for cache in ("false", "true"):
        train(_config(generated, tmp_path / cache, **{"data.cache": cache, "optim.max_steps": 3}))
    assert _losses(tmp_path / "false") == _losses(tmp_path / "true")


def test_knn_monitor_every_steps_zero_is_the_last_step_only(generated, tmp_path):
    config = _config(generated, tmp_path / "mon0", **{"optim.max_steps": 3, "monitor.every_steps": 0,
                                                      "monitor.k": 5})
    train(config)
    with open(tmp_path / "mon0" / "monitor.csv") as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["3"]
    config = _config(generated, tmp_path / "mon1", **{"monitor.every_steps": -1})
    with pytest.raises(ValueError, match="monitor.every_steps"):
        train(config)


def test_knn_monitor_uses_the_training_reader_args(generated, tmp_path):
    from pretrain.engine import _KnnMonitor

    config = _config(generated, tmp_path / "m", **{"data.reader_args.max_per_class": 3})
    config["monitor"] = {"query_split": "val"}
    monitor = _KnnMonitor(config, tmp_path)
    assert len(monitor.bank) == len(monitor.queries) == 3 * 5
    # on resume, rows past the resumed step are dropped, earlier ones kept
    (tmp_path / "monitor.csv").write_text("step,knn_top1,k,temperature\n1,20.00,5,0.1\n2,30.00,5,0.1\n3,40.00,5,0.1\n")
    _KnnMonitor(config, tmp_path, resume_step=2)
    assert (tmp_path / "monitor.csv").read_text().splitlines()[1:] == ["1,20.00,5,0.1", "2,30.00,5,0.1"]


@pytest.mark.parametrize("name,extra", [
    ("ressl", ["method.infonce_warmup_epochs=100"]),           # warm-up: alpha grows from 0
    ("ressl", ["method.bn=shuffle", "method.bn_splits=4", "method.predictor=false"]),
    ("cgh", ["method.layers=[1,2,3,4]", "method.predictor=true"]),
    ("ressl", ["views.student_crops=[{size: 32}, {size: 16, scale: [0.05, 0.4]}]"]),  # multi-crop
])
def test_ressl_and_cgh_engine_runs(generated, tmp_path, name, extra):
    out = tmp_path / name
    config = load_config(CONFIG_DIR / f"{name}_smoke.yaml", [
        f"data.root={generated['imagefolder']}", f"train.out_dir={out}", "optim.batch_size=16", "monitor=null",
        "optim.max_steps=2", "method.hidden_dim=32", "method.dim=16", "method.memory=64",
        "train.quiet=true", *extra])
    path = train(config)
    model, meta = ckpt.load_backbone(path)
    assert meta["method"] == name
    assert ("hypercolumn" in meta) == (name == "cgh")  # CGH exports its hypercolumn head (Table 8 "hyper")
    if name == "cgh":
        assert meta["hypercolumn"]["layers"] == [1, 2, 3, 4]
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(torch.isfinite(torch.tensor(float(r["loss"]))) for r in rows)
    if "method.infonce_warmup_epochs=100" in extra:  # alpha = step / warmup_steps
        assert float(rows[0]["alpha"]) == 0.0 and 0 < float(rows[1]["alpha"]) < 0.01
