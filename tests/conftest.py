import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_results(tmp_path, monkeypatch):
    """No test writes result records into the checkout's results/."""
    monkeypatch.setenv("SSL_REPRO_RESULTS", str(tmp_path / "results"))


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    """The suite's generated smoke datasets, made once per test session."""
    from pretrain.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("synthetic"), seed=0, scale="smoke", progress=False)


@pytest.fixture
def killed_run(monkeypatch):
    """``killed_run(config, step)``: train ``config`` until the engine has saved the checkpoint of
    ``step``, then stop it as a kill would (KeyboardInterrupt); the test resumes it itself."""
    from pretrain import engine

    def run(config, step: int) -> None:
        real_save = engine.ckpt.save

        def save_then_kill(obj, path):
            real_save(obj, path)
            if obj.get("step") == step:
                raise KeyboardInterrupt(f"simulated kill after the step-{step} checkpoint")

        monkeypatch.setattr(engine.ckpt, "save", save_then_kill)
        try:
            with pytest.raises(KeyboardInterrupt):
                engine.train(config)
        finally:
            monkeypatch.setattr(engine.ckpt, "save", real_save)
    return run


@pytest.fixture(scope="session")
def shared_data():
    """../shared/data beside the checkout; required in CI, skipped elsewhere if absent."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared data at {SHARED_DATA}")
        pytest.skip(f"no shared data at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smoke_checkpoint(tmp_path_factory):
    """Factory: ``smoke_checkpoint(arch, stem)`` -> path of a suite ``backbone.pth`` holding a
    seeded randomly initialised backbone (made once per session and arch/stem), for harness
    smoke runs that need a checkpoint file but not a trained one."""
    import torch

    from pretrain.checkpoint import save_backbone
    from pretrain.models.resnet import build_backbone

    folder = tmp_path_factory.mktemp("checkpoints")
    made: dict[tuple[str, str], Path] = {}

    def make(arch: str = "resnet18", stem: str = "cifar") -> Path:
        if (arch, stem) not in made:
            torch.manual_seed(0)
            made[arch, stem] = save_backbone(folder / f"{arch}_{stem}.pth", build_backbone(arch, stem=stem),
                                             method="smoke_random")
        return made[arch, stem]

    return make


@pytest.fixture
def one_thread():
    """Two busy cores: one intra-op thread is far faster than two contending OpenMP threads.
    Use it by name, or ``pytestmark = pytest.mark.usefixtures("one_thread")`` for a module."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
