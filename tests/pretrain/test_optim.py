import numpy as np
import pytest
import torch
from torch import nn

from pretrain.losses import byol_loss
from pretrain.optim import LARS, build_optimizer, parameter_groups
from pretrain.schedules import cosine_with_warmup, momentum_schedule


def test_lars_step_matches_reference():
    w = torch.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True)
    b = torch.tensor([0.1, -0.2], requires_grad=True)
    w.grad = torch.tensor([[0.1, 0.2], [-0.3, 0.05]])
    b.grad = torch.tensor([0.4, -0.1])
    opt = LARS([{"params": [w], "weight_decay": 0.01, "lars_adapt": True},
                {"params": [b], "weight_decay": 0.0, "lars_adapt": False}], lr=0.5, momentum=0.9, eta=0.02)
    w0, b0, gw, gb = (t.detach().numpy().copy() for t in (w, b, w.grad, b.grad))
    for _ in range(2):  # second step exercises the momentum buffer
        opt.step()
    # reference, written out: g' = g + wd w; trust = eta |w| / |g'|; v = m v + trust g'; w -= lr v
    def adapted(wk, g):
        g = g + 0.01 * wk
        return 0.02 * np.linalg.norm(wk) / np.linalg.norm(g) * g
    v = adapted(w0, gw); w1 = w0 - 0.5 * v
    v = 0.9 * v + adapted(w1, gw); w2 = w1 - 0.5 * v
    vb = gb; b1 = b0 - 0.5 * vb
    vb = 0.9 * vb + gb; b2 = b1 - 0.5 * vb
    np.testing.assert_allclose(w.detach().numpy(), w2, rtol=1e-6)
    np.testing.assert_allclose(b.detach().numpy(), b2, rtol=1e-6)


def test_bn_and_bias_excluded_from_decay():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    groups = parameter_groups(model, 1e-4, exclude_bn_bias=True)
    assert [len(g["params"]) for g in groups] == [2, 4]
    assert groups[1]["weight_decay"] == 0.0 and not groups[1]["lars_adapt"]
    sgd = build_optimizer(model, {"name": "sgd", "weight_decay": 1e-4, "exclude_bn_bias": True}, 0.1)
    assert [g["weight_decay"] for g in sgd.param_groups] == [1e-4, 0.0]


def test_lr_mult_gives_a_submodule_its_own_groups():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
            self.predictor = nn.Linear(4, 2)

    model = Net()
    groups = parameter_groups(model, 1e-4, exclude_bn_bias=True, lr_mult={"predictor": 10})
    mults = [(len(g["params"]), g.get("lr_mult", 1.0), g["weight_decay"]) for g in groups]
    # encoder weight | encoder bias + BN | predictor weight | predictor bias
    assert mults == [(1, 1.0, 1e-4), (3, 1.0, 0.0), (1, 10.0, 1e-4), (1, 10.0, 0.0)]
    assert groups[2]["params"][0] is model.predictor.weight
    with pytest.raises(ValueError, match="projector"):
        parameter_groups(model, 1e-4, exclude_bn_bias=True, lr_mult={"projector": 10})


def test_engine_applies_lr_mult_to_the_schedule(tmp_path, generated):
    from pretrain.config import CONFIG_DIR, load_config
    from pretrain.engine import train

    config = load_config(CONFIG_DIR / "byol_smoke.yaml", [
        f"data.root={generated['imagefolder']}", f"train.out_dir={tmp_path}", "monitor=null",
        "optim.max_steps=2", "optim.warmup_epochs=0", "optim.name=sgd", "optim.lr_mult={predictor: 10}",
        "train.checkpoint_every=1"])
    train(config)
    state = torch.load(tmp_path / "checkpoint.pth", weights_only=False)
    lrs = sorted({round(g["lr"], 8) for g in state["optimizer"]["param_groups"]})
    assert len(lrs) == 2 and abs(lrs[1] / lrs[0] - 10) < 1e-6


def test_schedules():
    lr = cosine_with_warmup(1.0, total_steps=100, warmup_steps=10)
    assert len(lr) == 100 and lr[0] == 0.0 and abs(lr[10] - 1.0) < 1e-12
    assert np.all(np.diff(lr[:11]) > 0) and np.all(np.diff(lr[10:]) <= 0) and lr[-1] < 1e-3
    m = momentum_schedule("cosine", 0.996, 1000)
    assert m[0] == 0.996 and np.all(np.diff(m) >= 0) and 1 - m[-1] < 1e-7
    assert np.all(momentum_schedule("constant", 0.99, 5) == 0.99)


def test_byol_loss_matches_formula():
    g = torch.Generator().manual_seed(0)
    p, z = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    pn, zn = p / p.norm(dim=1, keepdim=True), z / z.norm(dim=1, keepdim=True)
    expected = ((pn - zn) ** 2).sum(1).mean()
    torch.testing.assert_close(byol_loss(p, z), expected)


def test_momentum_update_and_copy():
    from pretrain.methods.common import momentum_copy, momentum_update

    online = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    target = momentum_copy(online)
    assert all(not p.requires_grad for p in target.parameters())
    before = [p.detach().clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
        online[1].running_mean.fill_(5.0)
    momentum_update(online, target, 0.9)
    for b, t, o in zip(before, target.parameters(), online.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    assert torch.all(target[1].running_mean == 0)  # buffers are not averaged
