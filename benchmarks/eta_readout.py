"""Is the pose in Phi's drawing, or lost when eta reads it? A read-out probe (built-in data).

Loads a trained run's checkpoint (EMA weights), then trains a copy of its eta
*supervised* on (Phi(x), ground-truth keypoints of x) over the training frames, Phi
frozen, and scores on evenly spread test frames:

- ``model``: the run's own eta(Phi(x)) (as evaluated; left/right by the frozen eta);
- ``readout``: the supervised eta on the same drawings Phi(x): what the drawing holds;
- ``clean``: the run's eta on beta(ground truth): how well eta reads a clean skeleton.

If ``readout`` is far below ``model``, the drawing carries the pose and eta (trained on
clean renders of the prior) misreads it; if not, Phi itself does not draw the pose.
Uses test and training labels: a research tool only (docs/results.md).

    python benchmarks/eta_readout.py RUN_DIR/checkpoints [iterations=300] [test_images=320]
"""
import copy
import json
import sys
import time

import torch

from keypointgan.data.base import SubsetSource
from keypointgan.eval.evaluator import mean_pose_baseline, predict_labelled, score
from keypointgan.infer.loading import load_trained
from keypointgan.train.trainer import Trainer


def main() -> None:
    path = sys.argv[1]
    its = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    n_test = int(sys.argv[3]) if len(sys.argv) > 3 else 320
    tm = load_trained(path, precision="fp32")
    cfg = copy.deepcopy(tm.cfg)
    cfg.train.eval_every = cfg.train.checkpoint_every = cfg.train.image_every = 0
    tr = Trainer(cfg, out_dir="/tmp/kpgan-eta-readout", progress=False)
    model, rt, sk, size = tm.model, tm.runtime, tm.skeleton, cfg.model.image_size
    world, src = tr.data.train.world, tr.data.train
    pairs = getattr(tr.data.pairs, "pairs", tr.data.pairs)

    def gt(vs, fs):
        return torch.stack([torch.as_tensor(world.keypoints(src.vids[v])[f], dtype=torch.float32)
                            for v, f in zip(vs, fs)])

    eta = copy.deepcopy(model.eta).train().requires_grad_(True)
    opt = torch.optim.Adam(eta.parameters(), lr=4e-4, betas=(0.5, 0.999))
    t0 = time.time()
    for step in range(1, its + 1):
        vs, xs, _ = zip(*pairs.indices(step))
        x = rt.tensor(tr.data.pair_batch(step)["x"])
        with torch.no_grad():
            y = model.phi(x)
        loss = torch.nn.functional.mse_loss(eta(y).keypoints.float(), rt.tensor(gt(vs, xs)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"readout step {step}: mse {float(loss):.5f} ({time.time() - t0:.0f} s)", flush=True)
    eta.eval().requires_grad_(False)

    test = SubsetSource.spread(tr.data.test, n_test)
    out = {"checkpoint": str(path), "step": tm.step, "readout_iterations": its, "test_images": len(test)}
    p = predict_labelled(model, test, rt, sk, tm.eta_pretrained)
    s = score(p.oriented, p.truth, sk, size)
    out["model_error_percent"] = s["error_percent"]
    out["mean_pose_error_percent"] = mean_pose_baseline(tr.data.prior, p.truth, sk, size)["error_percent"]
    probe = copy.deepcopy(model)
    probe.eta = eta
    q = predict_labelled(probe, test, rt, sk, None)
    out["readout_error_percent"] = score(q.keypoints, q.truth, sk, size)["error_percent"]
    with torch.no_grad():
        kp = torch.as_tensor(p.truth.keypoints, dtype=torch.float32)
        clean = torch.cat([model.eta(rt.tensor(model.render(kp[i:i + 64]))).keypoints.float()
                           for i in range(0, len(kp), 64)])
    out["clean_error_percent"] = score(clean.numpy().astype("float64"), p.truth, sk, size)["error_percent"]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
