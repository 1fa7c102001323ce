"""collate, grouped samplers and the multi-worker loader."""
import numpy as np
import pytest
import torch

from detzoo.data import (CocoDataset, DistributedGroupSampler, GroupSampler, build_dataloader,
                         build_test_dataloader, collate, make_shapes_dataset)
from detzoo.data.transforms import (Collect, DefaultFormatBundle, LoadAnnotations,
                                    LoadImageFromFile, Normalize, Pad, RandomFlip, Resize)
from detzoo.errors import DataError


def _sample(h, w, n, value):
    return dict(img=torch.full((3, h, w), float(value)), img_metas=dict(img_shape=(h, w, 3)),
                gt_bboxes=torch.zeros(n, 4), gt_labels=torch.zeros(n, dtype=torch.long))


def test_collate_pads_to_batch_max_rounded_to_32():
    batch = collate([_sample(50, 70, 2, 1), _sample(64, 33, 0, 2)])
    assert batch["img"].shape == (2, 3, 64, 96)
    assert (batch["img"][0, :, :50, :70] == 1).all() and batch["img"][0, :, 50:].abs().sum() == 0
    assert batch["img"][0, :, :, 70:].abs().sum() == 0
    assert (batch["img"][1, :, :64, :33] == 2).all() and batch["img"][1, :, :, 33:].abs().sum() == 0
    assert [len(b) for b in batch["gt_bboxes"]] == [2, 0] and len(batch["img_metas"]) == 2
    assert collate([_sample(64, 96, 1, 0)])["img"].shape == (1, 3, 64, 96)  # already a multiple
    assert collate([_sample(50, 70, 1, 0)], size_divisor=1)["img"].shape == (1, 3, 50, 70)


def test_collate_errors():
    bad = _sample(4, 4, 0, 0)
    bad["img"] = np.zeros((4, 4, 3))
    with pytest.raises(DataError, match="DefaultFormatBundle"):
        collate([bad])
    other = _sample(4, 4, 0, 0)
    del other["gt_labels"]
    with pytest.raises(DataError, match="different keys"):
        collate([_sample(4, 4, 0, 0), other])


class _Flags:
    def __init__(self, flag):
        self.flag = np.asarray(flag, dtype=np.uint8)

    def __len__(self):
        return len(self.flag)


def _check_group_batches(indices, flag, spg):
    batches = [indices[i:i + spg] for i in range(0, len(indices), spg)]
    assert all(len(b) == spg for b in batches)
    for b in batches:
        assert len({int(flag[i]) for i in b}) == 1, f"batch {b} mixes aspect-ratio groups"
    return batches


def test_group_sampler_batches_one_group_and_cover_every_index():
    rng = np.random.default_rng(0)
    flag = (rng.random(23) > 0.45).astype(np.uint8)
    sizes = np.bincount(flag)
    spg = 4
    sampler = GroupSampler(_Flags(flag), samples_per_gpu=spg, seed=7)
    expected_len = sum(-(-int(n) // spg) * spg for n in sizes)
    assert len(sampler) == expected_len
    for epoch in range(3):
        sampler.set_epoch(epoch)
        indices = list(sampler)
        assert len(indices) == expected_len
        _check_group_batches(indices, flag, spg)
        counts = np.bincount(indices, minlength=len(flag))
        assert (counts >= 1).all()  # every index at least once
        assert counts.sum() - len(flag) == expected_len - len(flag)  # only the top-up repeats
    sampler.set_epoch(0)
    first = list(sampler)
    assert first == list(GroupSampler(_Flags(flag), spg, seed=7))  # (seed, epoch) decides
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_distributed_group_sampler_splits_the_epoch_between_ranks():
    flag = np.array([0] * 11 + [1] * 6, np.uint8)
    spg, replicas = 2, 3
    parts = []
    for rank in range(replicas):
        s = DistributedGroupSampler(_Flags(flag), spg, num_replicas=replicas, rank=rank, seed=1)
        s.set_epoch(4)
        part = list(s)
        assert len(part) == len(s)
        _check_group_batches(part, flag, spg)
        parts.append(part)
    assert len({len(p) for p in parts}) == 1
    assert set(np.concatenate(parts).tolist()) == set(range(len(flag)))
    # 11 -> 12 and 6 -> 6 per (spg * replicas = 6): 18 samples in all, 6 per rank
    assert sum(len(p) for p in parts) == 18


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_dataset(str(tmp_path_factory.mktemp("shapes")), num_train=10, num_val=3,
                               seed=0, max_objects=3)


def _train_dataset(shapes):
    pipeline = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations),
                dict(type=Resize, img_scale=[(160, 96), (160, 128)], multiscale_mode="range"),
                dict(type=RandomFlip, flip_ratio=0.5),
                dict(type=Normalize, mean=[0, 0, 0], std=[255, 255, 255], to_rgb=True),
                dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
                dict(type=Collect, keys=["img", "gt_bboxes", "gt_labels"])]
    return CocoDataset(shapes["train_ann"], shapes["img_dir"], pipeline)


def _epoch(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return list(loader)


def _same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x["img"], y["img"])
        for mx, my in zip(x["img_metas"], y["img_metas"]):
            assert mx["img_id"] == my["img_id"] and mx["flip"] == my["flip"]
            assert mx["img_shape"] == my["img_shape"]
        for gx, gy in zip(x["gt_bboxes"], y["gt_bboxes"]):
            assert torch.equal(gx, gy)


def test_two_workers_give_the_same_batches_as_none(shapes):
    ds = _train_dataset(shapes)
    serial = build_dataloader(ds, samples_per_gpu=2, workers_per_gpu=0, seed=3)
    parallel = build_dataloader(ds, samples_per_gpu=2, workers_per_gpu=2, seed=3)
    assert parallel.persistent_workers and not parallel.pin_memory
    for epoch in (0, 1):
        _same_batches(_epoch(serial, epoch), _epoch(parallel, epoch))
    epoch0 = _epoch(serial, 0)
    flips = [m["flip"] for b in epoch0 for m in b["img_metas"]]
    assert 0 < sum(flips) < len(flips)  # augmentation really is random
    other_seed = _epoch(build_dataloader(ds, 2, 0, seed=4), 0)
    assert any(not torch.equal(x["img"], y["img"]) or x["img"].shape != y["img"].shape
               for x, y in zip(epoch0, other_seed))
    for batch in epoch0:  # one aspect-ratio group per batch
        assert len({m["ori_shape"][1] / m["ori_shape"][0] > 1 for m in batch["img_metas"]}) == 1


def test_test_loader_keeps_dataset_order(shapes):
    pipeline = [dict(type=LoadImageFromFile), dict(type=Resize, img_scale=(100, 80)),
                dict(type=Normalize, mean=[0, 0, 0], std=[1, 1, 1], to_rgb=False),
                dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
                dict(type=Collect, keys=["img"])]
    ds = CocoDataset(shapes["val_ann"], shapes["img_dir"], pipeline, test_mode=True)
    loader = build_test_dataloader(ds, samples_per_gpu=2, workers_per_gpu=0)
    ids = [m["img_id"] for b in loader for m in b["img_metas"]]
    assert ids == ds.img_ids == [1, 2, 3]
    assert all(set(b) == {"img", "img_metas"} for b in loader)
