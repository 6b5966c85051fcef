import numpy as np
import pytest
import torch

from evaluation.knn import top1, weighted_knn_predict


def brute_force_knn(train, train_y, test, num_classes, k, t):
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    out = []
    for x in test:
        sims = train @ x
        nearest = np.argsort(-sims, kind="stable")[:k]
        votes = np.zeros(num_classes)
        for j in nearest:
            votes[train_y[j]] += np.exp(sims[j] / t)
        out.append(int(np.argmax(votes)))
    return np.array(out)


def clustered(seed: int, classes: int, dim: int, n_train: int, n_test: int, spread: float):
    """Gaussian clusters around random centres: (train, train_y, test, test_y)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    train_y = rng.integers(0, classes, n_train)
    test_y = rng.integers(0, classes, n_test)
    train = centres[train_y] + spread * rng.normal(size=(n_train, dim))
    test = centres[test_y] + spread * rng.normal(size=(n_test, dim))
    return train, train_y, test, test_y


def test_weighted_knn_matches_brute_force():
    train, train_y, test, test_y = clustered(0, 5, 12, 300, 80, 0.9)
    for k, t in ((1, 0.07), (20, 0.07), (200, 0.1)):
        ours = weighted_knn_predict(torch.tensor(train), torch.tensor(train_y), torch.tensor(test), 5, k, t,
                                    batch_size=17)
        assert np.array_equal(ours.numpy(), brute_force_knn(train, train_y, test, 5, k, t)), (k, t)
    acc = top1(ours, torch.tensor(test_y))
    assert 40 < acc <= 100  # clustered data: far above the 20% chance level


def test_many_k_at_once_equals_each_k_alone():
    from evaluation.knn import weighted_knn_predict_many

    train, train_y, test, test_y = clustered(1, 4, 10, 150, 40, 1.2)
    many = weighted_knn_predict_many(torch.tensor(train), torch.tensor(train_y), torch.tensor(test), 4,
                                     (10, 20, 100, 200), 0.07, batch_size=13)
    assert list(many) == [10, 20, 100, 200]
    for k, predictions in many.items():
        assert np.array_equal(predictions.numpy(), brute_force_knn(train, train_y, test, 4, k, 0.07)), k


def test_knn_harness_smoke_records_each_k_and_the_best(generated, smoke_checkpoint):
    from evaluation.records import read_records
    from transfer import knn

    best = knn.main(["--smoke", "--ckpt", str(smoke_checkpoint("resnet18", "cifar")), "--dataset", "cifar10",
                     "--data", str(generated["cifar10"]), "--image-size", "32", "-k", "1", "5", "20", "-t", "0.07"])
    records = [r for r in read_records() if r.task == "knn_cls"]
    per_k = {r.protocol["k"]: r.value for r in records if r.protocol["aggregate"].startswith("k=")}
    assert sorted(per_k) == [1, 5, 20] and len(records) == 4
    assert all(r.scale == "smoke" and r.method == "smoke_random" and 0 <= r.value <= 100 for r in records)
    chosen = [r for r in records if r.protocol["aggregate"] == "best_over_k"]
    assert len(chosen) == 1 and chosen[0].value == max(per_k.values()) == best
    assert chosen[0].protocol["top1_per_k"] == {str(k): v for k, v in per_k.items()}
    assert per_k[chosen[0].protocol["k"]] == best
    assert chosen[0].protocol["test_split"] == "test"  # CIFAR's evaluation split, not named on the command line


class _Stop(Exception):
    pass


def _splits_and_transform(monkeypatch, argv):
    """The splits knn.py opens and the evaluation transform it builds, without extracting features."""
    from transfer import knn

    seen = {"splits": []}

    def fake_open(kind, root, split, **kwargs):
        seen["splits"].append(split)
        return [None]

    def fake_features(backbone, dataset, *args, **kwargs):
        seen["dataset"] = dataset
        raise _Stop

    monkeypatch.setattr(knn, "open_dataset", fake_open)
    monkeypatch.setattr(knn, "extract_features", fake_features)
    monkeypatch.setattr(knn, "backbone_from_args", lambda args: (None, "m", None))
    with pytest.raises(_Stop):
        knn.main(argv)
    return seen


def test_dino_preset_is_resize_256_centre_crop_224(monkeypatch, tmp_path):
    from transfer.common import ResizeCenterCrop

    seen = _splits_and_transform(monkeypatch, ["--smoke", "--random-init", "--arch", "resnet18", "--preset", "dino",
                                               "--dataset", "tinyimagenet", "--data", str(tmp_path)])
    dataset = seen["dataset"]
    assert isinstance(dataset, ResizeCenterCrop) and dataset.images.image_size == 256 and dataset.crop == 224
    assert dataset.offset == 16
    # Tiny-ImageNet has no labelled test split: its default evaluation split is val
    assert seen["splits"] == ["train", "val"]


@pytest.mark.parametrize("folders,expected", [(("train", "val"), "val"), (("train", "test"), "test"),
                                              (("train", "val", "test"), None), (("train",), None)])
def test_imagefolder_default_test_split_is_the_one_present(tmp_path, folders, expected):
    from pretrain.data.loading import default_test_split
    from pretrain.data.readers import DatasetError

    for top in ("flat", "nested/inner"):
        root = tmp_path / top
        for folder in folders:
            (root / folder / "cls").mkdir(parents=True)
        root = tmp_path / top.split("/")[0]
        if expected is None:
            with pytest.raises(DatasetError, match="--test-split"):
                default_test_split("imagefolder", root)
        else:
            assert default_test_split("imagefolder", root) == expected
    assert default_test_split("tinyimagenet", tmp_path) == "val"
    assert default_test_split("cifar10", tmp_path) == "test" and default_test_split("stl10", tmp_path) == "test"
