"""Training: learning happens, resumes are exact, failures are clean, DDP keeps ranks in sync."""

import math
import os
import signal
import socket

import pytest
import torch
import torch.multiprocessing as mp

from keypointgan.config import load_config
from keypointgan.core import checkpoint as ckpt
from keypointgan.core.logger import read_scalars
from keypointgan.train.trainer import Trainer, TrainingDiverged

TINY = ["model.image_size=32", "model.base_width=8", "model.max_width=32", "model.disc_layers=1",
        "model.disc_width=8", "data.synthetic_videos=12", "data.synthetic_frames=16", "train.batch_size=4",
        "train.log_every=1", "train.image_every=0", "train.checkpoint_every=0", "train.threads=1"]


def tiny(tmp_path, *extra):
    return load_config("cpu", TINY + [f"out_dir={tmp_path}"] + list(extra))


def series(out_dir, stage, key):
    return [(r["step"], r["scalars"][key]) for r in read_scalars(out_dir) if r["stage"] == stage and key in r["scalars"]]


def test_eta_pretraining_lowers_prior_regression_error(tmp_path):
    tr = Trainer(tiny(tmp_path, "train.eta_pretrain_iterations=60", "train.lr=1e-3"), progress=False)
    tr.pretrain_eta()
    loss = [v for _, v in series(tmp_path, "eta_pretrain", "eta_prior")]
    assert len(loss) == 60
    assert sum(loss[-10:]) / 10 < 0.5 * sum(loss[:5]) / 5
    assert tr.eta_frozen is not None and not any(p.requires_grad for p in tr.eta_frozen.parameters())


def test_short_training_lowers_reconstruction_loss(tmp_path):
    tr = Trainer(tiny(tmp_path, "train.eta_pretrain_iterations=5", "train.iterations=40", "train.lr=1e-3"),
                 progress=False)
    tr.pretrain_eta()
    tr.train()
    assert tr.cfg.loss.normalize_fallback  # the cpu preset's loss: its g_rec hovers near 1 by design
    rec = [v for _, v in series(tmp_path, "joint", "g_rec_raw")]
    assert len(rec) == 40 and all(math.isfinite(v) for v in rec)
    assert sum(rec[-8:]) / 8 < 0.8 * sum(rec[:4]) / 4


def test_generator_step_updates_phi_through_the_bottleneck_but_not_eta(tmp_path):
    tr = Trainer(tiny(tmp_path, "train.precision=fp32"), progress=False)
    phi0 = [p.detach().clone() for p in tr.model.phi.parameters()]
    eta0 = [p.detach().clone() for p in tr.model.eta.parameters()]
    b = tr.data.pair_batch(1)
    tr.generator_step(tr.runtime.tensor(b["x"]), tr.runtime.tensor(b["x_app"]))
    assert any(not torch.equal(a, p) for a, p in zip(phi0, tr.model.phi.parameters()))
    assert all(torch.equal(a, p) for a, p in zip(eta0, tr.model.eta.parameters()))


def test_resume_continues_exactly(tmp_path):
    common = ["train.precision=fp32", "train.eta_pretrain_iterations=3", "train.iterations=6"]
    a = Trainer(tiny(tmp_path / "a", *common), progress=False)
    a.pretrain_eta()
    a.train()
    b = Trainer(tiny(tmp_path / "b", *common), progress=False)
    b.pretrain_eta()
    b.train(iterations=3)
    b.save()
    del b
    c = Trainer(tiny(tmp_path / "b", *common), resume=True, progress=False)
    assert c.state.step == 3 and c.state.eta_step == 3
    c.train()
    for key in ("g_rec", "g_adv", "d", "eta_prior", "eta_cycle"):
        ra, rb = series(tmp_path / "a", "joint", key), series(tmp_path / "b", "joint", key)
        assert [s for s, _ in rb] == [s for s, _ in ra]  # the resumed log reads as one run
        assert [v for _, v in rb] == pytest.approx([v for _, v in ra], rel=1e-5, abs=1e-7), key
    for (name, ea), eb in zip(a.ema.module.state_dict().items(), c.ema.module.state_dict().values()):
        assert torch.allclose(ea.float(), eb.float(), rtol=1e-5, atol=1e-7), name  # the EMA resumes too


def test_ema_averages_weights_with_warm_up():
    from keypointgan.train.ema import ModelEMA, ema_decay_at

    assert ema_decay_at(0.99, 1) == pytest.approx(2 / 11) and ema_decay_at(0.99, 10**6) == 0.99
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = ModelEMA(net, 0.99)
    w0 = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net[1].num_batches_tracked += 5
    ema.update(net, 1)
    d = 2 / 11  # warm-up: the first update keeps 2/11 of the old weights
    assert torch.allclose(ema.module[0].weight, d * w0 + (1 - d) * (w0 + 1.0))
    assert int(ema.module[1].num_batches_tracked) == 5  # integer buffers are copied
    assert not any(p.requires_grad for p in ema.module.parameters()) and not ema.module.training
    with pytest.raises(ValueError, match="ema_decay"):
        ModelEMA(net, 1.0)


@pytest.mark.parametrize("option", ["train.ema_decay=1.0", "train.ema_decay=-0.5", "train.eta_pretrain_schedule=cosine"])
def test_bad_training_options_are_refused_before_training(tmp_path, option):
    from keypointgan.config import ConfigError

    with pytest.raises(ConfigError, match=option.split("=")[0]):
        Trainer(tiny(tmp_path, option), progress=False)
    assert not (tmp_path / "checkpoints").exists()  # nothing written, nothing trained


def test_periodic_test_error_is_logged_for_ema_and_raw_weights(tmp_path):
    tr = Trainer(tiny(tmp_path, "train.eta_pretrain_iterations=0", "train.iterations=4", "train.eval_every=2",
                      "train.eval_images=8"), progress=False)
    tr.train()
    rows = [r for r in read_scalars(tmp_path) if r["stage"] == "eval"]
    assert [r["step"] for r in rows] == [2, 4]
    for r in rows:
        s = r["scalars"]
        assert set(s) == {"ema_error_percent", "ema_pck@0.1", "raw_error_percent", "raw_pck@0.1",
                          "mean_pose_error_percent", "ema_flip_min_percent", "raw_flip_min_percent",
                          "mean_pose_flip_min_percent"}  # the built-in skeleton has left/right pairs
        assert all(math.isfinite(v) and v >= 0 for v in s.values())
        for who in ("ema", "raw", "mean_pose"):  # the swap-min can only lower the error
            assert s[f"{who}_flip_min_percent"] <= s[f"{who}_error_percent"] + 1e-9
    assert len(tr._eval_set) == 8


def test_checkpoints_keep_ema_weights_and_loading_prefers_them(tmp_path):
    from keypointgan.infer.loading import load_trained

    tr = Trainer(tiny(tmp_path, "train.precision=fp32", "train.eta_pretrain_iterations=2", "train.iterations=4",
                      "train.lr=1e-2"), progress=False)
    tr.pretrain_eta()
    tr.train()
    assert tr.inference_model is tr.ema.module
    path = tr.save()
    ema_w = next(iter(tr.ema.module.phi.parameters()))
    raw_w = next(iter(tr.model.phi.parameters()))
    assert not torch.allclose(ema_w, raw_w)
    # loaded models have their BatchNorms folded (inference only): compare what Phi draws
    x = torch.rand(2, 3, tr.cfg.model.image_size, tr.cfg.model.image_size) * 2 - 1
    with torch.no_grad():
        ema_y, raw_y = tr.ema.module.eval().phi(x), tr.model.eval().phi(x)
    assert not torch.allclose(ema_y, raw_y, atol=1e-4)
    for kind, want in (("auto", ema_y), ("ema", ema_y), ("raw", raw_y)):
        tm = load_trained(path, "cpu", "fp32", False, kind)
        with torch.no_grad():
            assert torch.allclose(tm.model.phi(x), want, atol=1e-5), kind
        assert tm.weights == ("model" if kind == "raw" else "model_ema")
    off = Trainer(tiny(tmp_path / "off", "train.eta_pretrain_iterations=0", "train.iterations=1",
                       "train.ema_decay=0"), progress=False)
    off.train()
    assert off.ema is None and off.inference_model is off.model
    p_off = off.save()
    assert load_trained(p_off, "cpu", "fp32", False).weights == "model"
    with pytest.raises(ckpt.CheckpointError, match="no EMA weights"):
        load_trained(p_off, "cpu", "fp32", False, "ema")


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    tr = Trainer(tiny(tmp_path, "train.eta_pretrain_iterations=0", "train.iterations=10"), progress=False)
    tr.train(iterations=2)
    good = tr.save()

    class Broken(torch.nn.Module):
        def forward(self, pred, target):
            return (pred - target).abs().mean() * float("nan")

    tr.rec_loss = Broken()
    with pytest.raises(TrainingDiverged, match="non-finite loss in g_rec"):
        tr.train()
    assert ckpt.latest_checkpoint(tr.checkpoint_dir) == good
    weights, _, meta = ckpt.load_checkpoint(tr.checkpoint_dir)
    assert meta["train_state"]["step"] == 2
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def test_ctrl_c_saves_a_checkpoint_and_stops_cleanly(tmp_path):
    tr = Trainer(tiny(tmp_path, "train.eta_pretrain_iterations=0", "train.iterations=50"), progress=False)

    def press_ctrl_c(step, scalars):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    tr.train(callback=press_ctrl_c)
    assert tr.interrupted and tr.state.step == 3
    assert ckpt.load_checkpoint(tr.checkpoint_dir)[2]["train_state"]["step"] == 3


def test_checkpoint_write_is_atomic_and_bad_checkpoints_are_clear_errors(tmp_path):
    root = tmp_path / "ck"
    ckpt.save_checkpoint(root, 1, {"w": torch.ones(2)}, {}, {"a": 1})
    (root / ".step_0000002.partial").mkdir()  # debris of an interrupted write is ignored
    assert ckpt.latest_checkpoint(root).name == "step_0000001"
    (root / "step_0000001" / "weights.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ckpt.CheckpointError, match="unreadable checkpoint"):
        ckpt.load_checkpoint(root)
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint found"):
        ckpt.load_checkpoint(tmp_path / "empty_dir_that_is_missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    cfg = load_config("cpu", TINY + [f"out_dir={out_dir}", "train.eta_pretrain_iterations=2",
                                     "train.iterations=3", "train.precision=fp32"])
    tr = Trainer(cfg, progress=False)
    assert tr.dist.world_size == world
    tr.pretrain_eta()
    tr.train()
    tr.save()
    flat = torch.cat([p.detach().flatten() for p in list(tr.model.parameters()) + list(tr.disc.parameters())])
    torch.save(flat, os.path.join(out_dir, f"params_rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_ddp_two_gloo_processes_stay_in_sync(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    p0 = torch.load(tmp_path / "params_rank0.pt", weights_only=True)
    p1 = torch.load(tmp_path / "params_rank1.pt", weights_only=True)
    assert torch.allclose(p0, p1, atol=1e-6)  # averaged gradients keep replicas identical
    assert ckpt.latest_checkpoint(tmp_path / "checkpoints") is not None  # rank 0 wrote it


@pytest.mark.parametrize("total", [1, 7, 100])
def test_onecycle_lr_matches_torch_schedule(total):
    from keypointgan.train.trainer import onecycle_lr

    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=total, cycle_momentum=False)
    for step in range(1, total + 1):
        assert onecycle_lr(step, total, 2e-3) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        opt.step()
        sched.step()
