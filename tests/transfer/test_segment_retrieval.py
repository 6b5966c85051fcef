"""VOC segment retrieval: k-means against sklearn, ground-truth regions give mIoU 100, smoke
runs of the harness on generated and shared VOC."""
import numpy as np
import pytest
import torch

from transfer.segment_retrieval import (CLASSES, SUBSET_7, accumulate_iou, kmeans, kmeans_pp_init, lloyd,
                                        mean_iou, nearest_labels, region_descriptors, region_majority,
                                        subset_labels)


def blobs(seed, b=3, n=200, d=8, k=5):
    g = torch.Generator().manual_seed(seed)
    centres = 4 * torch.randn(b, k, d, generator=g)
    assign = torch.randint(k, (b, n), generator=g)
    return torch.gather(centres, 1, assign[..., None].expand(-1, -1, d)) + torch.randn(b, n, d, generator=g)


def test_lloyd_matches_sklearn_from_the_same_start():
    from sklearn.cluster import KMeans

    x = blobs(0).double()
    uniforms = torch.rand(3, 5, generator=torch.Generator().manual_seed(1))
    init = kmeans_pp_init(x, 5, uniforms)
    labels, centres = lloyd(x, init)
    for i in range(3):
        ref = KMeans(5, init=init[i].numpy(), n_init=1, max_iter=300, tol=0, algorithm="lloyd").fit(x[i].numpy())
        np.testing.assert_array_equal(labels[i].numpy(), ref.labels_)
        np.testing.assert_allclose(centres[i].numpy(), ref.cluster_centers_, atol=1e-4)


def test_kmeans_is_deterministic_per_image_seed():
    x = blobs(2, b=4)
    seeds = [10, 11, 12, 13]
    first = kmeans(x, 5, seeds)
    assert torch.equal(first, kmeans(x, 5, seeds))
    # an image's clustering does not depend on the batch it is in
    assert torch.equal(first[2:], kmeans(x[2:], 5, seeds[2:]))
    # k-means++ picks different seeds for another seed (its first centre differs)
    u1 = torch.rand(1, 5, generator=torch.Generator().manual_seed(10))
    u2 = torch.rand(1, 5, generator=torch.Generator().manual_seed(99))
    assert not torch.equal(kmeans_pp_init(x[:1], 5, u1), kmeans_pp_init(x[:1], 5, u2))


def test_kmeans_survives_fewer_distinct_points_than_k():
    x = torch.zeros(1, 30, 4)
    x[0, 15:] = 1.0
    labels = kmeans(x, 15, [0])
    assert labels.shape == (1, 30) and len(torch.unique(labels[0, :15])) == 1


def test_region_majority_ignores_void():
    regions = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]]])
    labels = torch.tensor([[[3, 3, 255, 255], [5, 0, 255, 255], [0, 0, 4, 255]]])
    assert region_majority(regions, labels, 4).tolist() == [[3, -1, 0, -1]]


def test_ground_truth_regions_give_miou_100(generated):
    """Regions = the ground-truth segments (at the masks' resolution) and descriptors = one-hot
    of their class: every val region retrieves a bank region of its own class, so both
    scorings are exactly 100."""
    from pretrain.data.readers import VOC

    def regions_of(split):
        dataset = VOC(generated["voc"], year="2012", split=split, task="segmentation")
        for i in range(len(dataset)):
            mask = torch.from_numpy(dataset[i][1])
            regions = torch.where(mask == 255, 0, mask).long()[None]          # region id = class id
            yield mask, regions, torch.nn.functional.one_hot(regions.flatten(1), 21).float()

    for keep in (SUBSET_7, None):
        bank_desc, bank_labels = [], []
        # bank = train + val, so that every val class has a bank region (20 generated images per split)
        for mask, regions, feats in (*regions_of("train"), *regions_of("val")):
            desc, _ = region_descriptors(feats, regions.flatten(1), 21)
            bank_desc.append(desc[0])
            bank_labels.append(region_majority(regions, subset_labels(mask[None], keep), 21)[0])
        bank_desc, bank_labels = torch.cat(bank_desc), torch.cat(bank_labels)
        usable = bank_labels >= 0
        totals = torch.zeros(4, 21, dtype=torch.float64)
        for mask, regions, feats in regions_of("val"):
            desc, _ = region_descriptors(feats, regions.flatten(1), 21)
            region_label, _ = nearest_labels(desc, bank_desc[usable], bank_labels[usable])
            accumulate_iou(totals, region_label, regions, [mask], keep)
        miou, iou, classes, present = mean_iou(totals, keep)
        assert len(present) >= 3, "the generated val split should hold several scored classes"
        assert miou == 100, (keep, iou)


def test_subset_labels_voids_other_classes():
    mask = torch.tensor([0, CLASSES.index("cat"), CLASSES.index("dog"), 255])
    assert subset_labels(mask, SUBSET_7).tolist() == [0, CLASSES.index("cat"), 255, 255]


def _run(data, ckpt, out, extra=()):
    from evaluation.records import read_records
    from transfer import segment_retrieval

    results = segment_retrieval.main(["--smoke", "--ckpt", str(ckpt), "--data", str(data), "--bank", "train",
                                      "--out", str(out), *extra])
    records = {r.protocol["classes"]: r for r in read_records() if r.task == "segment_retrieval"}
    assert set(records) == {7, 21} and all(r.scale == "smoke" and r.dataset == "VOC12" for r in records.values())
    assert records[21].value == pytest.approx(results["21"]) and 0 <= results["7"] <= 100
    assert (out / "retrievals.png").is_file()
    return records


def test_harness_on_generated_voc(generated, smoke_checkpoint, tmp_path):
    records = _run(generated["voc"], smoke_checkpoint("resnet18", "imagenet"), tmp_path / "out")
    assert records[7].protocol["output_stride"] == 8 and records[7].protocol["k"] == 15


def test_harness_on_shared_voc_output_stride_16(shared_data, smoke_checkpoint, tmp_path):
    records = _run(shared_data / "voc", smoke_checkpoint("resnet18", "imagenet"), tmp_path / "out",
                   ["--output-stride", "16", "--max-images", "6"])
    assert records[21].protocol["output_stride"] == 16 and records[21].protocol["val_images"] == 6


def test_train_aug_bank_needs_sbd(generated, smoke_checkpoint, tmp_path):
    from pretrain.data.readers import DatasetError
    from transfer import segment_retrieval

    with pytest.raises(DatasetError, match="SegmentationClassAug"):
        segment_retrieval.main(["--smoke", "--ckpt", str(smoke_checkpoint("resnet18", "imagenet")),
                                "--data", str(generated["voc"]), "--out", str(tmp_path)])
