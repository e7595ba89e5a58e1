"""Pair samplers: same video, gap respected, seeded, resumable, worker-independent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures import coded_frame, write_frames
from torch.utils.data import DataLoader

from keypointgan.data import DataError, FolderVideos, PairSampler, TPSPairSampler
from keypointgan.data.tps import IDENTITY


class CodedVideos:
    """In-memory VideoSource whose frames encode (video, index) exactly."""

    image_size = 8

    def __init__(self, lengths):
        self.lengths = list(lengths)

    def __len__(self):
        return len(self.lengths)

    def num_frames(self, video):
        return self.lengths[video]

    def frame(self, video, index):
        assert 0 <= index < self.lengths[video]
        t = torch.zeros(3, self.image_size, self.image_size)
        t[0], t[1] = video / 100.0, index / 1000.0
        return t

    def video_name(self, video):
        return f"clip{video}"


def _decode(batch_x):
    return [(round(f[0, 0, 0].item() * 100), round(f[1, 0, 0].item() * 1000)) for f in batch_x]


def test_gap_same_video_sorted_order():
    src = CodedVideos([40, 60, 100])
    s = PairSampler(src, batch_size=16, frame_gap=(5, 30), seed=3)
    gaps = []
    for step in range(30):
        b = s.batch(step)
        assert b["x"].shape == (16, 3, 8, 8) and b["x_app"].shape == (16, 3, 8, 8)
        for (v1, i), (v2, j) in zip(_decode(b["x"]), _decode(b["x_app"])):
            assert v1 == v2 and 5 <= j - i <= 30 and 0 <= i and j < src.lengths[v1]
            gaps.append(j - i)
    assert min(gaps) == 5 and max(gaps) == 30


def test_random_order_and_short_videos():
    src = CodedVideos([3, 1, 12])
    s = PairSampler(src, batch_size=32, frame_gap=(5, 30), seed=0, order="random")
    assert s.skipped == [1]  # the one-frame video
    signs = set()
    for step in range(10):
        for v, i, j in s.indices(step):
            n = src.lengths[v]
            assert v != 1 and 0 <= min(i, j) and max(i, j) < n
            assert abs(j - i) >= min(5, n - 1)  # clamped for the 3-frame video: gap exactly 2
            if n == 3:
                assert abs(j - i) == 2
            signs.add(np.sign(j - i))
    assert signs == {-1, 1}


def test_one_frame_videos_only_is_a_clear_error():
    with pytest.raises(DataError, match=r"no video has at least 2 frames \(clip0, clip1\).*data.tps=true"):
        PairSampler(CodedVideos([1, 1]), batch_size=2)
    with pytest.raises(ValueError, match="frame_gap"):
        PairSampler(CodedVideos([10]), batch_size=2, frame_gap=(6, 5))


def test_deterministic_and_resumable():
    src = CodedVideos([50, 70])
    a = PairSampler(src, 4, seed=11)
    it = iter(a)
    first = [next(it) for _ in range(5)]
    state = a.state_dict()
    assert state == {"seed": 11, "step": 5}
    sixth = next(it)
    b = PairSampler(src, 4, seed=0)
    b.load_state_dict(state)
    resumed = next(iter(b))
    assert torch.equal(resumed["x"], sixth["x"]) and torch.equal(resumed["x_app"], sixth["x_app"])
    again = PairSampler(src, 4, seed=11)
    assert all(torch.equal(again.batch(k)["x"], first[k]["x"]) for k in range(5))
    other = PairSampler(src, 4, seed=12)
    assert not all(torch.equal(other.batch(k)["x"], first[k]["x"]) for k in range(5))


def test_dataloader_workers_give_the_same_stream():
    src = CodedVideos([50, 70])
    s = PairSampler(src, 4, seed=5, start_step=2)
    loader = DataLoader(s, batch_size=None, num_workers=2)
    got = []
    for k, b in enumerate(loader):
        got.append(b)
        if k == 4:
            break
    for k, b in enumerate(got):
        assert torch.equal(b["x"], s.batch(2 + k)["x"])


def test_pairs_from_frame_folders(tmp_path):
    for v in range(2):
        write_frames(tmp_path / f"v{v}", [coded_frame(v, i) for i in range(12)])
    src = FolderVideos(tmp_path, 16)
    b = PairSampler(src, 6, frame_gap=(2, 4), seed=1).batch(0)
    assert b["x"].shape == (6, 3, 16, 16) and b["x"].min() >= -1 and b["x"].max() <= 1
    r = lambda t: round((t[0].mean().item() + 1) * 127.5 / 10)  # noqa: E731
    g = lambda t: round((t[1].mean().item() + 1) * 127.5 / 40)  # noqa: E731
    for x, y in zip(b["x"], b["x_app"]):
        assert g(x) == g(y) and 2 <= r(y) - r(x) <= 4


def test_tps_sampler_shapes_and_seed():
    src = CodedVideos([1, 1, 1])
    src.image_size = 16
    s = TPSPairSampler(src, 5, seed=2)
    b = s.batch(0)
    assert b["x"].shape == (5, 3, 16, 16) and b["x_app"].shape == (5, 3, 16, 16)
    assert torch.equal(TPSPairSampler(src, 5, seed=2).batch(0)["x_app"], b["x_app"])
    ident = TPSPairSampler(src, 5, seed=2, params=IDENTITY).batch(0)
    assert torch.allclose(ident["x"], ident["x_app"], atol=1e-6)
