"""ReSSL and CGH: losses against independent numpy references, hypercolumn shapes, the
InfoNCE warm-up weight, the memory queue, split/shuffle batch norm, and engine runs."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pretrain.losses import relation_loss, symmetric_relation_loss
from pretrain.methods.cgh import CGH
from pretrain.methods.common import MemoryQueue, SplitBatchNorm2d, batch_shuffled, split_batch_norm
from pretrain.methods.mocov2 import MoCoV2
from pretrain.methods.ressl import ReSSL


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def reference_relation(student, teacher, queue, tau_s, tau_t, teacher_queue=None):
    """-sum_k p2_k log p1_k per sample (Eq. 3-5 of ReSSL), averaged; float64, one sample at a time."""
    student, teacher, queue = (np.asarray(t, np.float64) for t in (student, teacher, queue))
    teacher_queue = queue if teacher_queue is None else np.asarray(teacher_queue, np.float64)
    losses = []
    for s, t in zip(student, teacher):
        p1 = _softmax(queue @ s / tau_s)
        p2 = _softmax(teacher_queue @ t / tau_t)
        losses.append(-(p2 * np.log(p1)).sum())
    return float(np.mean(losses))


def _unit(g, *shape):
    return F.normalize(torch.randn(*shape, generator=g), dim=-1)


def test_relation_loss_matches_reference():
    g = torch.Generator().manual_seed(0)
    s, t, q, qh = _unit(g, 6, 8), _unit(g, 6, 8), _unit(g, 40, 8), _unit(g, 40, 8)
    for tau_s, tau_t in ((0.1, 0.04), (0.2, 0.01), (0.1, 0.1)):
        assert relation_loss(s, t, q, tau_s, tau_t).item() == pytest.approx(
            reference_relation(s, t, q, tau_s, tau_t), rel=1e-5)
        assert relation_loss(s, t, q, tau_s, tau_t, teacher_queue=qh).item() == pytest.approx(
            reference_relation(s, t, q, tau_s, tau_t, qh), rel=1e-5)


def test_relation_loss_target_has_no_gradient_and_sharpening_matters():
    g = torch.Generator().manual_seed(1)
    s = _unit(g, 4, 8).requires_grad_()
    t = _unit(g, 4, 8).requires_grad_()
    q = _unit(g, 30, 8)
    relation_loss(s, t, q, 0.1, 0.04).backward()
    assert t.grad is None and s.grad is not None and s.grad.abs().sum() > 0
    # the loss is minimised (over students) by matching the target: student == teacher and
    # tau_s == tau_t gives the entropy of the target, a lower bound of the cross-entropy
    same = relation_loss(t.detach(), t.detach(), q, 0.1, 0.1).item()
    other = relation_loss(s.detach(), t.detach(), q, 0.1, 0.1).item()
    assert same < other


def _tiny_ressl(**kw):
    args = dict(arch="resnet18", stem="cifar", dim=16, hidden_dim=32, memory=24, tau_s=0.1, tau_t=0.04,
                teacher_view={"size": 16, "scale": (0.2, 1.0), "jitter_p": 0, "gray_p": 0, "blur_p": 0},
                student_views=[{"size": 16, "blur_p": 0}])
    args.update(kw)
    return ReSSL(**args)


def test_ressl_forward_equals_equations():
    torch.manual_seed(0)
    model = _tiny_ressl(predictor=True)
    memory_before = model.memory().clone()
    weak, strong = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    loss, logs = model([weak, strong])
    with torch.no_grad():
        z1 = F.normalize(model.predictor(model.projector(model.encoder(strong))), dim=1)
        z2 = F.normalize(model.teacher_projector(model.teacher_encoder(weak)), dim=1)
    # BN in train mode: recomputing the student gives the same batch statistics
    assert loss.item() == pytest.approx(reference_relation(z1, z2, memory_before, 0.1, 0.04), rel=1e-4)
    # the teacher embeddings were pushed into the memory
    torch.testing.assert_close(model.memory()[:4], z2, rtol=1e-5, atol=1e-6)
    assert int(model.memory.ptr) == 4 and logs["alpha"] == 1.0


def test_infonce_warmup_alpha_is_step_over_warmup_steps():
    model = _tiny_ressl(infonce_warmup_epochs=2)
    for epoch, expected in ((0, 0.0), (0.5, 0.25), (1.0, 0.5), (2.0, 1.0), (7.0, 1.0)):
        model.begin_step(epoch, None)
        assert model.alpha() == pytest.approx(expected)
    # during the warm-up the loss is alpha * relation + (1 - alpha) * InfoNCE
    torch.manual_seed(0)
    model.begin_step(0.5, None)
    weak, strong = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    memory = model.memory().clone()
    loss, logs = model([weak, strong])
    with torch.no_grad():
        z1 = F.normalize(model.predictor(model.projector(model.encoder(strong))), dim=1).numpy().astype(np.float64)
        z2 = F.normalize(model.teacher_projector(model.teacher_encoder(weak)), dim=1).numpy().astype(np.float64)
    mem = memory.numpy().astype(np.float64)
    nce = np.mean([-np.log(_softmax(np.concatenate([[a @ b], mem @ a]) / 0.2)[0]) for a, b in zip(z1, z2)])
    expected = 0.25 * reference_relation(z1, z2, mem, 0.1, 0.04) + 0.75 * nce
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def reference_symmetric(student_a, student_b, teacher_a, teacher_b, queue, tau_s, tau_t):
    """Symmetrised ReSSL written out: the student of crop a against the teacher of crop b and
    vice versa, every sample's cross-entropy summed in float64, the 2N terms averaged."""
    student_a, student_b, teacher_a, teacher_b, queue = (
        np.asarray(t, np.float64) for t in (student_a, student_b, teacher_a, teacher_b, queue))
    total, count = 0.0, 0
    for students, teachers in ((student_a, teacher_b), (student_b, teacher_a)):
        for s, t in zip(students, teachers):
            log_p1 = queue @ s / tau_s - np.log(np.exp(queue @ s / tau_s).sum())
            p2 = np.exp(queue @ t / tau_t) / np.exp(queue @ t / tau_t).sum()
            total += -(p2 * log_p1).sum()
            count += 1
    return total / count


def _reference_nce(z1, z2, mem, tau):
    return np.mean([-np.log(_softmax(np.concatenate([[a @ b], mem @ a]) / tau)[0]) for a, b in zip(z1, z2)])


def test_symmetric_relation_loss_matches_reference():
    g = torch.Generator().manual_seed(5)
    sa, sb, ta, tb, q = _unit(g, 6, 8), _unit(g, 6, 8), _unit(g, 6, 8), _unit(g, 6, 8), _unit(g, 40, 8)
    for tau_s, tau_t in ((0.1, 0.03), (0.2, 0.05)):
        got = symmetric_relation_loss(sa, sb, ta, tb, q, tau_s, tau_t).item()
        assert got == pytest.approx(reference_symmetric(sa, sb, ta, tb, q, tau_s, tau_t), rel=1e-5)
        # relabelling the crops changes nothing; pairing each crop with itself would
        assert symmetric_relation_loss(sb, sa, tb, ta, q, tau_s, tau_t).item() == pytest.approx(got, rel=1e-6)
        assert reference_symmetric(sa, sb, tb, ta, q, tau_s, tau_t) != pytest.approx(got, rel=1e-3)
    sa.requires_grad_()
    tb.requires_grad_()
    symmetric_relation_loss(sa, sb, ta, tb, q, 0.1, 0.04).backward()
    assert sa.grad.abs().sum() > 0 and tb.grad is None  # targets carry no gradient


def test_symmetric_ressl_forward_equals_equations():
    torch.manual_seed(0)
    model = _tiny_ressl(predictor=True, symmetric=True)
    teacher, student = model.views[0], model.views[2]
    assert model.views == [teacher, teacher, student, student] and teacher.jitter_p == 0 and student.blur_p == 0
    memory_before = model.memory().clone()
    weak_a, weak_b, strong_a, strong_b = (torch.randn(4, 3, 16, 16) for _ in range(4))
    loss, logs = model([weak_a, weak_b, strong_a, strong_b])
    with torch.no_grad():
        z1_a, z1_b = (F.normalize(model.predictor(model.projector(model.encoder(x))), dim=1)
                      for x in (strong_a, strong_b))
        z2_a, z2_b = (F.normalize(model.teacher_projector(model.teacher_encoder(x)), dim=1) for x in (weak_a, weak_b))
    expected = reference_symmetric(z1_a, z1_b, z2_a, z2_b, memory_before, 0.1, 0.04)
    assert loss.item() == pytest.approx(expected, rel=1e-4) and logs["relation"] == pytest.approx(expected, rel=1e-4)
    # both crops' teacher embeddings were pushed, crop a first
    torch.testing.assert_close(model.memory()[:8], torch.cat([z2_a, z2_b]), rtol=1e-5, atol=1e-6)
    assert int(model.memory.ptr) == 8


def test_symmetric_ressl_infonce_warmup_uses_the_same_pairing():
    torch.manual_seed(0)
    model = _tiny_ressl(symmetric=True, infonce_warmup_epochs=2)
    model.begin_step(0.5, None)  # alpha 0.25
    views = [torch.randn(4, 3, 16, 16) for _ in range(4)]
    memory = model.memory().numpy().astype(np.float64)
    loss, _ = model(views)
    with torch.no_grad():
        z1_a, z1_b = (F.normalize(model.predictor(model.projector(model.encoder(x))), dim=1).numpy()
                      for x in views[2:])
        z2_a, z2_b = (F.normalize(model.teacher_projector(model.teacher_encoder(x)), dim=1).numpy() for x in views[:2])
    nce = 0.5 * (_reference_nce(z1_a, z2_b, memory, 0.2) + _reference_nce(z1_b, z2_a, memory, 0.2))
    expected = 0.25 * reference_symmetric(z1_a, z1_b, z2_a, z2_b, memory, 0.1, 0.04) + 0.75 * nce
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_symmetric_ressl_refuses_multi_crop():
    with pytest.raises(ValueError, match="symmetric.*one student view"):
        _tiny_ressl(symmetric=True, student_views=[{"size": 16}, {"size": 8}])


def test_memory_queue_fifo_and_wrap_around():
    queue = MemoryQueue(5, 2)
    batches = [torch.full((2, 2), float(i)) for i in range(1, 5)]  # 8 keys into 5 slots
    for b in batches:
        queue.push(b)
    # slots 0..4 were written by keys 1,1,2,2,3 then 3,4,4 overwrite slots 0,1,2
    assert queue()[:, 0].tolist() == [3.0, 4.0, 4.0, 2.0, 3.0]
    assert int(queue.ptr) == 3
    out = queue()
    queue.push(torch.zeros(1, 2))
    assert out[3, 0] == 2.0  # forward() returns a copy, untouched by later pushes


def test_split_batch_norm_equals_bn_per_group():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(3)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    split = SplitBatchNorm2d(3, splits=2)
    split.load_state_dict(bn.state_dict())
    x = torch.randn(8, 3, 4, 4)
    y = split(x)
    for group in (0, 1):  # samples group, group+2, ... form a group
        ref = torch.nn.functional.batch_norm(x[group::2], None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
        torch.testing.assert_close(y[group::2], ref, rtol=1e-5, atol=1e-5)
    # running stats: the mean of the groups' updates
    means = torch.stack([x[i::2].mean(dim=(0, 2, 3)) for i in (0, 1)])
    torch.testing.assert_close(split.running_mean, 0.1 * means.mean(0), rtol=1e-5, atol=1e-6)
    split.eval()
    bn.load_state_dict(split.state_dict())
    torch.testing.assert_close(split(x), bn.eval()(x))


def test_split_batch_norm_keeps_the_input_memory_layout():
    """A channels_last input comes out channels_last (the engine runs channels_last; an NCHW
    output made the next max-pool several times slower) with the same values as NCHW."""
    torch.manual_seed(0)
    split = SplitBatchNorm2d(4, splits=2)
    x = torch.randn(8, 4, 5, 5)
    y = split(x)
    assert y.is_contiguous()
    y_cl = split(x.contiguous(memory_format=torch.channels_last))
    assert y_cl.is_contiguous(memory_format=torch.channels_last) and not y_cl.is_contiguous()
    assert torch.equal(y_cl, y)


def test_batch_shuffled_returns_the_original_order_and_changes_bn_groups():
    torch.manual_seed(0)
    net = split_batch_norm(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4)), 2)
    x = torch.randn(8, 3, 2, 2)
    g = torch.Generator().manual_seed(3)
    out = batch_shuffled(net, x, g)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, net(x[perm])[torch.argsort(perm)])
    assert not torch.allclose(out, net(x))  # different BN groups than unshuffled
    net.eval()
    torch.testing.assert_close(batch_shuffled(net, x, g), net(x))  # per-sample fn: identity


@pytest.mark.parametrize("arch,stem,size,expected_c5", [
    ("resnet18", "cifar", 32, 4), ("resnet18", "imagenet", 64, 2), ("resnet50", "imagenet", 224, 7),
    ("resnet18", "imagenet", 224, 7), ("resnet50", "cifar", 32, 4), ("resnet50", "imagenet", 64, 2)])
def test_hypercolumn_shapes(arch, stem, size, expected_c5):
    torch.manual_seed(0)
    model = CGH(arch=arch, stem=stem, layers=(1, 2, 3, 4), dim=8, hidden_dim=16, memory=8)
    maps = model.student.encoder.forward_stages(torch.randn(2, 3, size, size))
    assert maps["C5"].shape[-1] == expected_c5
    channels = model.student.hypercolumn.reduce[0].in_channels
    widths = model.student.encoder.stage_channels
    assert channels == sum(widths.values())
    h = model.student.hypercolumn(maps)
    assert h.shape == (2, model.student.encoder.num_features)
    z_g, z_h = model.student(torch.randn(2, 3, size, size))
    assert z_g.shape == z_h.shape == (2, 8)


def _tiny_cgh(**kw):
    """A small CGH whose two memories are different and informative."""
    args = dict(arch="resnet18", stem="cifar", layers=(3, 4), dim=8, hidden_dim=16, memory=12,
                tau_s=0.1, tau_t=0.04, tau_h=0.08)
    args.update(kw)
    model = CGH(**args)
    model.memory.push(_unit(torch.Generator().manual_seed(1), 12, 8))
    model.hyper_memory.push(_unit(torch.Generator().manual_seed(2), 12, 8))
    return model


def _cgh_step(model):
    """One step on random views: loss, logs, the memories before it and (z_g1, z_h1, z_g2, z_h2)
    recomputed outside the method, as numpy."""
    q, qh = model.memory().numpy(), model.hyper_memory().numpy()
    weak, strong = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    loss, logs = model([weak, strong])
    with torch.no_grad():
        zg1, zh1 = (F.normalize(z, dim=1).numpy() for z in model.student(strong))
        zg2, zh2 = (F.normalize(z, dim=1).numpy() for z in model.teacher(weak))
    return loss, logs, q, qh, (zg1, zh1, zg2, zh2)


def test_cgh_loss_is_the_sum_of_the_two_cross_context_terms():
    torch.manual_seed(0)
    model = _tiny_cgh()
    loss, logs, q, qh, (zg1, zh1, zg2, zh2) = _cgh_step(model)
    gh = reference_relation(zg1, zh2, q, 0.1, 0.08, teacher_queue=qh)   # CE(y_g1, y_h2)
    hg = reference_relation(zh1, zg2, qh, 0.08, 0.04, teacher_queue=q)  # CE(y_h1, y_g2)
    assert logs["L_gh"] == pytest.approx(gh, rel=1e-4) and logs["L_hg"] == pytest.approx(hg, rel=1e-4)
    assert loss.item() == pytest.approx(gh + hg, rel=1e-4)
    # both memories received the teacher's embeddings of this batch, in the same slots
    np.testing.assert_allclose(model.memory()[:4].numpy(), zg2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.hyper_memory()[:4].numpy(), zh2, rtol=1e-5, atol=1e-6)


def test_cgh_same_context_ablation_uses_each_context_own_target():
    torch.manual_seed(0)
    loss, _, q, qh, (zg1, zh1, zg2, zh2) = _cgh_step(_tiny_cgh(context="same"))
    expected = reference_relation(zg1, zg2, q, 0.1, 0.04) + reference_relation(zh1, zh2, qh, 0.08, 0.08)
    assert loss.item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("build", [
    lambda bn: ReSSL("resnet18", stem="cifar", dim=8, hidden_dim=16, memory=8, bn=bn),
    lambda bn: MoCoV2("resnet18", stem="cifar", dim=8, hidden_dim=16, queue_size=8, bn=bn),
])
def test_unknown_bn_setting_is_an_error_naming_it(build):
    with pytest.raises(ValueError, match="'sync'"):
        build("sync")


def test_cgh_authors_recipe_halves_the_terms_and_warms_up_infonce_on_both_contexts():
    """reduction 'mean' (the authors' 0.5/0.5) and, during the warm-up, (1 - α) times InfoNCE of
    the global context against Q plus InfoNCE of the hypercolumn context against Q_h."""
    torch.manual_seed(0)
    model = _tiny_cgh(reduction="mean", infonce_warmup_epochs=2)
    model.begin_step(0.5, None)  # alpha 0.25
    loss, logs, q, qh, (zg1, zh1, zg2, zh2) = _cgh_step(model)
    cgh = 0.5 * (reference_relation(zg1, zh2, q, 0.1, 0.08, teacher_queue=qh)
                 + reference_relation(zh1, zg2, qh, 0.08, 0.04, teacher_queue=q))
    nce = _reference_nce(zg1, zg2, q, 0.2) + _reference_nce(zh1, zh2, qh, 0.2)
    assert logs["alpha"] == 0.25
    assert loss.item() == pytest.approx(0.25 * cgh + 0.75 * nce, rel=1e-4)
    model.begin_step(2.0, None)  # after the warm-up: the CGH terms alone, halved
    loss, logs, *_ = _cgh_step(model)
    assert loss.item() == pytest.approx(0.5 * (logs["L_gh"] + logs["L_hg"]), rel=1e-5)


def test_cgh_local_crops_enter_only_the_global_student_term():
    """Multi-crop: every crop's global embedding learns the hypercolumn teacher's relation
    (averaged over the crops); the hypercolumn-student term uses the first crop only."""
    torch.manual_seed(0)
    model = _tiny_cgh(student_views=[{"size": 16}, {"size": 8}, {"size": 8}])
    q, qh = model.memory().numpy(), model.hyper_memory().numpy()
    weak, first, local_a, local_b = (torch.randn(4, 3, s, s) for s in (16, 16, 8, 8))
    loss, logs = model([weak, first, local_a, local_b])
    with torch.no_grad():
        zg1, zh1 = (F.normalize(z, dim=1).numpy() for z in model.student(first))
        zg2, zh2 = (F.normalize(z, dim=1).numpy() for z in model.teacher(weak))
        locals_ = [F.normalize(model.student.projector(model.student.encoder(x)), dim=1).numpy()
                   for x in (local_a, local_b)]
    gh = np.mean([reference_relation(z, zh2, q, 0.1, 0.08, teacher_queue=qh) for z in [zg1, *locals_]])
    hg = reference_relation(zh1, zg2, qh, 0.08, 0.04, teacher_queue=q)
    assert logs["L_gh"] == pytest.approx(gh, rel=1e-4) and logs["L_hg"] == pytest.approx(hg, rel=1e-4)
    assert loss.item() == pytest.approx(gh + hg, rel=1e-4)


def test_cgh_shuffle_bn_splits_the_encoders_and_shuffles_the_teacher_batch():
    torch.manual_seed(0)
    model = _tiny_cgh(bn="shuffle", bn_splits=2)
    split = lambda net: {type(m).__name__ for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}  # noqa: E731
    assert split(model.student.encoder) == split(model.teacher.encoder) == {"SplitBatchNorm2d"}
    assert split(model.student.hypercolumn) == {"BatchNorm2d"}  # the heads' BN is plain, as the authors'
    weak = torch.randn(8, 3, 16, 16)
    model.begin_step(0.0, torch.Generator().manual_seed(3))
    z_g2, z_h2 = model.teacher_embeddings(weak)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref_g, ref_h = (F.normalize(z, dim=1)[torch.argsort(perm)] for z in model.teacher(weak[perm]))
    torch.testing.assert_close(z_g2, ref_g)
    torch.testing.assert_close(z_h2, ref_h)


def test_hypercolumn_resizes_lower_stages_bilinearly():
    """The authors' resize (bilinear, align_corners False): for C2 -> C5 (factor 8 on a 64 px
    CIFAR-stem input) it differs from average pooling; for a factor 2 the two agree."""
    torch.manual_seed(0)
    model = CGH(arch="resnet18", stem="cifar", layers=(1, 4), dim=8, hidden_dim=16, memory=8).eval()
    maps = model.student.encoder.forward_stages(torch.randn(2, 3, 64, 64))
    head = model.student.hypercolumn
    expected = head.reduce(torch.cat([F.interpolate(maps["C2"], size=maps["C5"].shape[-2:], mode="bilinear",
                                                    align_corners=False), maps["C5"]], 1)).mean((2, 3))
    torch.testing.assert_close(head(maps), expected)
    head.resize = "avgpool"
    assert not torch.allclose(head(maps), expected)
    pair = CGH(arch="resnet18", stem="cifar", layers=(3, 4), dim=8, hidden_dim=16, memory=8).eval()
    hyper = pair.student.hypercolumn
    bilinear = hyper(maps)
    hyper.resize = "avgpool"
    torch.testing.assert_close(hyper(maps), bilinear)


def test_cgh_backbone_file_carries_the_hypercolumn_head(tmp_path):
    """The exported backbone holds the student's hypercolumn head; ``representation(...,
    "hypercolumn")`` rebuilds h_h from it exactly; other checkpoints are refused, naming it."""
    from pretrain import checkpoint as ckpt
    from pretrain.features import HypercolumnFeatures, representation

    torch.manual_seed(0)
    model = CGH(arch="resnet18", stem="cifar", layers=(2, 4), dim=8, hidden_dim=16, memory=8)
    with torch.no_grad():  # non-trivial BN statistics in the head
        model.student.hypercolumn.reduce[1].running_mean.uniform_(-1, 1)
    path = ckpt.save_backbone(tmp_path / "backbone.pth", model.backbone, method="cgh", extra=model.export_extra())
    backbone, meta = ckpt.load_backbone(path)
    assert meta["hypercolumn"]["layers"] == [2, 4] and meta["hypercolumn"]["resize"] == "bilinear"
    features = representation(backbone, "hypercolumn", str(path)).eval()
    assert isinstance(features, HypercolumnFeatures) and features.num_features == 512
    x = torch.randn(3, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        expected = model.student.hypercolumn(model.student.encoder.forward_stages(x))
        torch.testing.assert_close(features(x), expected)
    assert representation(backbone, "global", str(path)) is backbone
    plain = ckpt.save_backbone(tmp_path / "plain.pth", model.backbone, method="ressl")
    with pytest.raises(ckpt.CheckpointError, match="no 'hypercolumn' head"):
        representation(backbone, "hypercolumn", str(plain))
