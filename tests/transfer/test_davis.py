"""DAVIS label propagation: the videowalk procedure against a literal reference, oracle
features, and smoke runs of the harness on generated (multi-object) and shared DAVIS data."""
import numpy as np
import pytest
import torch
from PIL import Image

from transfer.davis import context_frames, first_frame_labels, label_propagation_backbone, propagate


def reference_propagation(feats, first, topk, radius, context, temperature):
    """videowalk test.py written out per query position: the video front-padded with `context`
    copies of frame 0, keys = padded frame 0 + the `context` padded frames before the query,
    spatial mask D < radius on all but the first, top-k of affinity / T, softmax, weighted labels."""
    T, C, h, w = feats.shape
    padded = [0] * context + list(range(T))
    labels = {0: first.reshape(first.shape[0], -1)}
    coords = [(y, x) for y in range(h) for x in range(w)]
    for t in range(1, T):
        q_index = context + t
        key_frames = [padded[0]] + [padded[i] for i in range(q_index - context, q_index)]
        pred = np.zeros((first.shape[0], h * w))
        for qi, (qy, qx) in enumerate(coords):
            q = feats[t, :, qy, qx]
            scores, key_labels = [], []
            for n, f in enumerate(key_frames):
                for ki, (ky, kx) in enumerate(coords):
                    s = float(feats[f, :, ky, kx] @ q)
                    if n > 0 and ((ky - qy) ** 2 + (kx - qx) ** 2) ** 0.5 >= radius:
                        s = -1e10
                    scores.append(s / temperature)
                    key_labels.append(labels[f][:, ki])
            order = np.argsort(-np.array(scores), kind="stable")[:topk]
            top = np.array(scores)[order]
            weights = np.exp(top - top.max())
            weights /= weights.sum()
            pred[:, qi] = sum(wk * key_labels[o] for wk, o in zip(weights, order))
        labels[t] = pred
    return np.stack([labels[t] for t in range(T)]).reshape(T, first.shape[0], h, w)


def test_context_frames_front_padding():
    assert context_frames(1, 20) == [0] * 21
    assert context_frames(3, 4) == [0, 0, 0, 1, 2]
    assert context_frames(25, 20) == [0] + list(range(5, 25))


def test_propagation_matches_literal_reference():
    g = torch.Generator().manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(5, 6, 4, 5, generator=g), dim=1).double()
    first = torch.softmax(torch.randn(3, 4, 5, generator=g), 0).double()
    for kw in (dict(topk=3, radius=2.0, context=2, temperature=0.05),
               dict(topk=5, radius=1.5, context=3, temperature=0.07)):
        ours = propagate(feats.float(), first.float(), chunk=7, **kw)
        want = reference_propagation(feats.numpy(), first.numpy(), **kw)
        np.testing.assert_allclose(ours.numpy(), want, atol=2e-5)


def test_oracle_features_reproduce_first_frame_consistent_masks(generated):
    """With one-hot ground-truth features every key of the query's object ties at the top, so
    the propagated masks are the ground truth (objects as labelled in the first frame)."""
    from pretrain.data.readers import DAVIS

    dataset = DAVIS(generated["davis"])
    multi = 0
    for seq in dataset.sequences:
        gt = np.stack([dataset.load_annotation(p) for p in dataset.annotations(seq)])[:, ::6, ::6]
        ids, first = first_frame_labels(gt[0], gt.shape[1:])
        multi += len(ids) > 2
        assert set(np.unique(gt)) <= set(ids.tolist())
        oracle = torch.from_numpy((gt[:, None] == ids[None, :, None, None]).astype(np.float32))
        first = torch.from_numpy((gt[0][None] == ids[:, None, None]).astype(np.float32))
        soft = propagate(oracle, first, topk=10, radius=12, context=20, temperature=0.05)
        np.testing.assert_array_equal(ids[soft.argmax(1).numpy()], gt)
    assert multi > 0, "the generated DAVIS split should hold a multi-object sequence"


def test_stride_removal_keeps_layer3_undilated():
    from pretrain.models.resnet import build_backbone

    stride = label_propagation_backbone(build_backbone("resnet18"), "stride")
    dilated = label_propagation_backbone(build_backbone("resnet18"), "dilated")
    x = torch.randn(1, 3, 64, 96)
    assert stride.forward_stages(x, last="C4")["C4"].shape == (1, 256, 8, 12)
    assert dilated.forward_stages(x, last="C4")["C4"].shape == (1, 256, 8, 12)
    assert all(m.dilation == (1, 1) for m in stride.layer3.modules() if isinstance(m, torch.nn.Conv2d))
    assert any(m.dilation == (2, 2) for m in dilated.layer3.modules() if isinstance(m, torch.nn.Conv2d))


def _run(data, ckpt, out, extra=()):
    from evaluation.records import read_records
    from transfer import davis

    scores = davis.main(["--smoke", "--ckpt", str(ckpt), "--data", str(data), "--out", str(out), *extra])
    records = {r.metric: r for r in read_records() if r.task == "video_seg"}
    assert set(records) == {"J_mean", "F_mean", "JF_mean"}
    assert all(r.scale == "smoke" and r.dataset == "DAVIS-2017" for r in records.values())
    assert records["JF_mean"].value == pytest.approx(scores["J&F-Mean"])
    assert records["J_mean"].protocol["temperature"] == 0.05 and records["J_mean"].protocol["feature_dim"] == 256
    return records


def test_harness_on_generated_multi_object_davis(generated, smoke_checkpoint, tmp_path):
    from pretrain.data.readers import DAVIS

    records = _run(generated["davis"], smoke_checkpoint("resnet18", "imagenet"), tmp_path / "out",
                   ["--input-scale", "1", "--chunk", "64"])
    dataset = DAVIS(generated["davis"])
    assert records["J_mean"].protocol["objects"] > len(dataset.sequences)  # some sequences hold several
    for seq in dataset.sequences:
        gt = dataset.load_annotation(dataset.annotations(seq)[0])
        first = Image.open(tmp_path / "out" / seq / "00000.png")
        assert first.mode == "P" and first.size == (gt.shape[1], gt.shape[0])
        for path in sorted((tmp_path / "out" / seq).glob("*.png")):
            assert np.array(Image.open(path)).max() <= gt.max()
        assert (tmp_path / "out" / "overlays" / f"{seq}.png").is_file()
    assert (tmp_path / "out" / "global_results-val.csv").is_file()


def test_harness_on_shared_davis(shared_data, smoke_checkpoint, tmp_path):
    records = _run(shared_data / "davis", smoke_checkpoint("resnet18", "imagenet"), tmp_path / "out",
                   ["--max-frames", "6"])
    assert records["J_mean"].protocol["sequences"] == 2 and records["J_mean"].protocol["objects"] == 2
    assert {p.name for p in (tmp_path / "out" / "overlays").iterdir()} == {"blackswan.png", "car-shadow.png"}
    assert Image.open(tmp_path / "out" / "blackswan" / "00003.png").size == (854, 480)


def test_full_scale_refuses_reduced_settings(generated, smoke_checkpoint, tmp_path):
    from transfer import davis

    with pytest.raises(SystemExit):
        davis.main(["--scale", "full", "--ckpt", str(smoke_checkpoint("resnet18", "imagenet")),
                    "--data", str(generated["davis"]), "--max-frames", "3", "--out", str(tmp_path)])


def test_upsampling_matches_videowalk_cv2_resize():
    """labels_to_ids upsamples as videowalk's dump_predictions (cv2.resize, INTER_LINEAR) then argmax."""
    import cv2

    from transfer.davis import labels_to_ids

    soft = torch.rand(3, 4, 15, 27, generator=torch.Generator().manual_seed(0))
    ids = np.array([0, 1, 3, 4], dtype=np.uint8)
    ours = labels_to_ids(soft, ids, (120, 214))
    for t in range(3):
        up = cv2.resize(soft[t].permute(1, 2, 0).numpy(), (214, 120), interpolation=cv2.INTER_LINEAR)
        agree = ours[t] == ids[up.argmax(-1)]
        assert agree.mean() > 0.999  # only float near-ties may differ
