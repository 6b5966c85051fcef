import numpy as np
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


def test_weighted_knn_matches_brute_force():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 12))
    train_y = rng.integers(0, 5, 300)
    test_y = rng.integers(0, 5, 80)
    train = centres[train_y] + 0.9 * rng.normal(size=(300, 12))
    test = centres[test_y] + 0.9 * rng.normal(size=(80, 12))
    for k, t in ((1, 0.07), (20, 0.07), (200, 0.1)):
        ours = weighted_knn_predict(torch.tensor(train), torch.tensor(train_y), torch.tensor(test), 5, k, t,
                                    batch_size=17)
        assert np.array_equal(ours.numpy(), brute_force_knn(train, train_y, test, 5, k, t)), (k, t)
    acc = top1(ours, torch.tensor(test_y))
    assert 40 < acc <= 100  # clustered data: far above the 20% chance level


def test_knn_harness_smoke_writes_a_record(generated, smoke_checkpoint):
    from evaluation.records import read_records
    from transfer import knn

    accuracy = knn.main(["--smoke", "--ckpt", str(smoke_checkpoint("resnet18", "cifar")), "--dataset", "cifar10",
                         "--data", str(generated["cifar10"]), "--image-size", "32", "-k", "20", "-t", "0.07"])
    records = [r for r in read_records() if r.task == "knn_cls"]
    assert len(records) == 1 and records[0].scale == "smoke" and records[0].value == accuracy
    assert records[0].method == "smoke_random" and records[0].protocol["k"] == 20
    assert 0 <= accuracy <= 100
