import pytest

from evaluation.records import read_records
from pretrain.data.readers import DatasetError, ImageFolder
from transfer import semisup
from transfer.linear import lr_multipliers


def test_recipes_follow_the_papers():
    r = semisup.RECIPES
    assert (r["ressl_1pct"].backbone_lr, r["ressl_1pct"].lr, r["ressl_1pct"].epochs) == (0.0, 0.1, 60)
    assert (r["ressl_10pct"].backbone_lr, r["ressl_10pct"].lr, r["ressl_10pct"].epochs) == (0.02, 0.2, 20)
    assert all(r[n].schedule == "cosine" and r[n].weight_decay == 0 for n in ("ressl_1pct", "ressl_10pct"))
    lewel = r["lewel_1pct"]
    factors = lr_multipliers(lewel, steps_per_epoch=3)
    assert lewel.lr * factors[29 * 3] == pytest.approx(1.0) and lewel.lr * factors[30 * 3] == pytest.approx(0.1)
    assert lewel.backbone_lr * factors[40 * 3] == pytest.approx(1e-6)
    assert (r["cgh_10pct"].lr, r["cgh_10pct"].backbone_lr) == (0.2, 2e-4)


def test_keep_subset_selects_listed_files_and_names_unknown_ones(generated):
    root = generated["imagefolder"]
    reader = ImageFolder(root, "train")
    picked = ["circle/00003.jpg", "ring/00000.jpg"]
    semisup.keep_subset(reader, picked, "list.txt")
    assert [(s.rsplit("/", 2)[-2] + "/" + s.rsplit("/", 1)[-1], y) for s, y in reader.samples] == [
        ("circle/00003.jpg", reader.class_to_idx["circle"]), ("ring/00000.jpg", reader.class_to_idx["ring"])]
    with pytest.raises(DatasetError, match="n01440764_10026.JPEG"):
        semisup.keep_subset(ImageFolder(root, "train"), ["circle/00001.jpg", "n01440764_10026.JPEG"], "list.txt")
    with pytest.raises(DatasetError, match="several class folders.*00001.jpg"):
        semisup.keep_subset(ImageFolder(root, "train"), ["00001.jpg"], "list.txt")


def test_smoke_run_writes_records(generated, smoke_checkpoint, tmp_path):
    subset = tmp_path / "1percent.txt"
    subset.write_text("".join(f"{c}/{i:05d}.jpg\n" for c in ("circle", "cross", "ring", "square", "triangle")
                              for i in range(2)))
    result = semisup.main(["--smoke", "--ckpt", str(smoke_checkpoint("resnet18", "cifar")), "--recipe", "ressl_10pct",
                           "--data", str(generated["imagefolder"]), "--subset", str(subset), "--max-per-class", "4",
                           "--crop", "16", "--resize", "16", "--batch-size", "5", "--results", str(tmp_path)])
    records = list(read_records(tmp_path))
    assert sorted((r.task, r.metric, r.scale) for r in records) == [
        ("semi_sup_10pct", "top1", "smoke"), ("semi_sup_10pct", "top5", "smoke")]
    protocol = records[0].protocol
    assert protocol["labelled_images"] == 10 and protocol["backbone_lr"] == 0.02 and protocol["epochs"] == 2
    assert protocol["backbone"].startswith("fine-tuned")
    assert result["top5"] == 100.0  # 5 classes
