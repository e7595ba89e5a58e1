"""Video folders: listing, frame folders and .mp4 files, and every bad-input case."""

from __future__ import annotations

import logging

import av
import numpy as np
import pytest
import torch
from fixtures import coded_frame, write_frames, write_mp4

from keypointgan.data import DataError, FolderVideos, VideoSource, decode_video, list_videos, read_image


def _index_of(t: torch.Tensor) -> int:
    """Recover the frame index coded in the red channel of a (3, H, W) [-1, 1] frame."""
    r = (t[0].mean().item() + 1) * 127.5
    return int(round(r / 10))


def _truncate(path, keep: float = 0.5) -> None:
    b = path.read_bytes()
    path.write_bytes(b[: int(len(b) * keep)])


def test_list_videos_natural_order(tmp_path):
    write_frames(tmp_path / "b10", [coded_frame(0, 0)])
    write_frames(tmp_path / "b2", [coded_frame(0, 0)], ext=".jpg")
    write_mp4(tmp_path / "a.mp4", [coded_frame(0, i) for i in range(4)])
    write_frames(tmp_path, [coded_frame(0, 0)], names=["loose.png"])
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    vids = list_videos(tmp_path)
    assert [(v.name, v.kind) for v in vids] == [("a", "file"), ("b2", "frames"), ("b10", "frames"),
                                                 ("loose", "frames")]


def test_empty_and_missing_folder(tmp_path):
    with pytest.raises(DataError, match=f"no videos found in {tmp_path}"):
        list_videos(tmp_path)
    (tmp_path / "empty_sub").mkdir()
    with pytest.raises(DataError, match="no videos found"):
        FolderVideos(tmp_path, 16)
    with pytest.raises(DataError, match="not found"):
        list_videos(tmp_path / "nope")


def test_frame_folder_source(tmp_path):
    frames = [coded_frame(1, i, h=24, w=40) for i in range(12)]
    write_frames(tmp_path / "walk", frames, names=[f"f{i}.png" for i in range(12)])  # f2 < f10
    src = FolderVideos(tmp_path, 16)
    assert isinstance(src, VideoSource)
    assert len(src) == 1 and src.num_frames(0) == 12 and src.video_name(0) == "walk"
    for i in (0, 2, 10, 11):
        t = src.frame(0, i)
        assert t.shape == (3, 16, 16) and t.dtype == torch.float32 and -1 <= t.min() and t.max() <= 1
        assert _index_of(t) == i
    with pytest.raises(IndexError):
        src.frame(0, 12)


def test_video_file_source(tmp_path):
    write_mp4(tmp_path / "clip.mp4", [coded_frame(2, i) for i in range(8)])
    src = FolderVideos(tmp_path, 16)
    assert src.num_frames(0) == 8
    assert [_index_of(src.frame(0, i)) for i in range(8)] == list(range(8))
    assert src.frame(0, 3).shape == (3, 16, 16)


def test_video_cache_dir(tmp_path):
    write_mp4(tmp_path / "v" / "clip.mp4", [coded_frame(2, i) for i in range(6)])
    a = FolderVideos(tmp_path / "v", 16, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    b = FolderVideos(tmp_path / "v", 16, cache_dir=tmp_path / "cache")
    assert torch.equal(a.frame(0, 5), b.frame(0, 5))
    assert FolderVideos(tmp_path / "v", 16, max_frames=4).num_frames(0) == 4


def test_truncated_png_is_a_counted_skip(tmp_path, caplog):
    paths = write_frames(tmp_path / "v", [coded_frame(0, i) for i in range(6)])
    _truncate(paths[2])
    _truncate(paths[4])
    with pytest.raises(DataError, match="unreadable image"):
        read_image(paths[2])
    src = FolderVideos(tmp_path, 16)
    with caplog.at_level(logging.WARNING, logger="keypointgan.data"):
        assert _index_of(src.frame(0, 2)) in (1, 3)  # nearest readable frame
        assert _index_of(src.frame(0, 4)) in (3, 5)
        src.frame(0, 2)  # remembered: not re-read, not re-counted
    assert src.skips.counts["bad_frame"] == 2
    warnings = [r for r in caplog.records if "unreadable image" in r.getMessage()]
    assert len(warnings) == 1 and str(paths[2]) in warnings[0].getMessage()


def test_all_frames_bad_is_an_error(tmp_path):
    paths = write_frames(tmp_path / "broken", [coded_frame(0, i) for i in range(3)])
    for p in paths:
        p.write_bytes(b"not a png")
    src = FolderVideos(tmp_path, 16)
    with pytest.raises(DataError, match=r"broken: all 3 frames of video 'broken' are unreadable"):
        src.frame(0, 1)


def test_truncated_mp4_is_a_clear_error(tmp_path):
    p = write_mp4(tmp_path / "cut.mp4", [coded_frame(0, i) for i in range(8)])
    _truncate(p)
    with pytest.raises(DataError) as e:
        FolderVideos(tmp_path, 16)
    assert str(p) in str(e.value) and "corrupt or truncated" in str(e.value)
    (tmp_path / "cut.mp4").write_bytes(b"garbage" * 20)
    with pytest.raises(DataError, match="cut.mp4"):
        decode_video(tmp_path / "cut.mp4")


def test_mp4_cut_mid_stream_keeps_decodable_frames(tmp_path):
    """With the index at the front (faststart) a cut file decodes up to the cut: counted."""
    path = tmp_path / "fs.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        s = out.add_stream("mpeg4", rate=10)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        for _ in range(20):
            f = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    _truncate(path, 0.6)
    src = FolderVideos(tmp_path, 16)
    assert 0 < src.num_frames(0) < 20
    assert src.skips.counts["truncated_video"] == 1
