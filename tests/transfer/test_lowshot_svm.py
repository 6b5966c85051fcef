from pathlib import Path

import numpy as np
import pytest

from evaluation.records import read_records
from pretrain.data.readers import VOC, VOC_CLASSES, DatasetError
from transfer import lowshot_svm


def random_labels(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([1, 0, -1], dtype=np.int8), size=(n, 20), p=[0.2, 0.05, 0.75])


def test_sampling_draws_exactly_k_positives_per_class_and_is_seeded():
    labels = random_labels()
    for k in (1, 4, 16):
        draws = lowshot_svm.sample_low_shot(labels, k, np.random.default_rng(7))
        assert sorted(draws) == list(range(20))
        for c, index in draws.items():
            assert len(index) == len(set(index.tolist())) == k
            assert (labels[index, c] == 1).all()  # positives only, never a difficult-only image
        again = lowshot_svm.sample_low_shot(labels, k, np.random.default_rng(7))
        assert all(np.array_equal(draws[c], again[c]) for c in draws)
    other = lowshot_svm.sample_low_shot(labels, 16, np.random.default_rng(8))
    assert any(not np.array_equal(draws[c], other[c]) for c in draws)


def test_sampling_names_a_class_with_too_few_positives():
    labels = random_labels()
    labels[:, 3] = -1
    labels[:2, 3] = 1
    with pytest.raises(DatasetError, match=f"class {VOC_CLASSES[3]} has 2 positive"):
        lowshot_svm.sample_low_shot(labels, 4, np.random.default_rng(0))


def test_image_labels_equal_the_devkit_class_files(generated):
    voc = VOC(generated["voc"], year="2007", split="trainval")
    labels = lowshot_svm.image_labels(voc)
    main = Path(voc.root) / "ImageSets" / "Main"
    for c, name in enumerate(VOC_CLASSES):
        rows = dict(line.split() for line in (main / f"{name}_trainval.txt").read_text().splitlines())
        assert [int(rows[i]) for i in voc.ids] == labels[:, c].tolist(), name


def test_svm_on_separable_features_scores_map_100():
    rng = np.random.default_rng(0)
    labels = random_labels(200, seed=1)
    directions = rng.normal(size=(20, 64))
    feats = lowshot_svm.l2_normalize((labels == 1) @ directions + 0.01 * rng.normal(size=(200, 64)))
    classes = list(range(20))
    scores = lowshot_svm.svm_scores(feats[:100], labels[:100], feats[100:], 0.5, classes, "negative")
    value, per_class = lowshot_svm.score_map(labels[100:], scores, classes, "negative", "envelope")
    assert value == pytest.approx(100.0) and len(per_class) == 20
    shuffled = lowshot_svm.svm_scores(feats[:100], labels[rng.permutation(100)], feats[100:], 0.5, classes, "negative")
    assert lowshot_svm.score_map(labels[100:], shuffled, classes, "negative", "envelope")[0] < 60


def test_smoke_run_writes_a_record_per_k(generated, smoke_checkpoint, tmp_path):
    out = lowshot_svm.main(["--smoke", "--ckpt", str(smoke_checkpoint("resnet18", "cifar")),
                            "--data", str(generated["voc"]), "--resize", "20", "--crop", "16",
                            "--results", str(tmp_path)])
    records = list(read_records(tmp_path))
    assert [(r.task, r.metric, r.scale, r.protocol["k"]) for r in records] == [
        ("low_shot", "mAP", "smoke", k) for k in ("1", "2", "full")]
    assert [len(r.protocol["mAP_per_run"]) for r in records] == [2, 2, 1]
    for r, o in zip(records, out):
        assert r.value == pytest.approx(np.mean([run["mAP"] for run in r.protocol["mAP_per_run"]]), abs=1e-3)
        assert 0 < r.value <= 100 and r.value == o["mAP"]
    runs = records[0].protocol["mAP_per_run"]
    assert runs[0]["sample_sha256"] != runs[1]["sample_sha256"]  # two independent samplings
