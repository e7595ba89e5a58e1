"""Does the reconstruction reward the right pose? An oracle on the built-in data.

Trains Psi alone on (beta(pose), x') -> x, where the pose is the ground truth of x
("gt"), of x' ("app": nothing beyond x') or the mean prior pose ("mean"), then prints
the raw reconstruction terms per level on held-out pairs (one scale for all
conditions), for "gt" also with noisy / wrong poses and the cosine between the gradient
on the keypoints and their error. If "gt" is not clearly below "app", the reconstruction
cannot tell Phi which pose is right (docs/results.md).

    python benchmarks/psi_oracle.py 400                       # iterations, demo preset
    CONDS=gt,app python benchmarks/psi_oracle.py 400 render.sigma=0.4
"""
import sys, time, copy, json
import torch
from keypointgan.config import load_config
from keypointgan.train.trainer import Trainer
its = int(sys.argv[1]) if len(sys.argv) > 1 else 150
over = sys.argv[2:]
cfg = load_config("demo", over + ["out_dir=/tmp/oracle", "train.eval_every=0", "train.checkpoint_every=0", "train.image_every=0"])
tr = Trainer(cfg, out_dir="/tmp/kpgan-psi-oracle", progress=False)
world, src = tr.data.train.world, tr.data.train
pairs = tr.data.pairs
P = getattr(pairs, "pairs", pairs)
def gt(vs, fs):
    return torch.stack([torch.as_tensor(world.keypoints(src.vids[v])[f], dtype=torch.float32) for v, f in zip(vs, fs)])
def batch(step):
    vs, xs, aps = zip(*P.indices(step))
    b = tr.data.pair_batch(step)
    return b, gt(vs, xs), gt(vs, aps)
mean = (tr.data.prior.poses() if hasattr(tr.data.prior, "poses") else tr.data.prior).float().mean(0)
rt = tr.runtime
res = {}
val = [batch(10**9 + i) for i in range(4)]
import os
for cond in os.environ.get("CONDS", "gt,app,mean").split(","):
    psi = copy.deepcopy(tr.model.psi)
    opt = torch.optim.Adam(psi.parameters(), lr=4e-4, betas=(0.5, 0.999))
    rl = copy.deepcopy(tr.rec_loss)
    t0 = time.time()
    def pose(kx, ka):
        return {"gt": kx, "app": ka, "mean": mean.expand_as(kx)}[cond]
    for s in range(its):
        b, kx, ka = batch(s + 1)
        x, xa = rt.tensor(b["x"]), rt.tensor(b["x_app"])
        with rt.autocast():
            y = tr.model.psi_pose(pose(kx, ka))
            loss = rl(psi(rt.tensor(y), xa), x)
        opt.zero_grad(); loss.backward(); opt.step()
    rl.eval(); psi.eval()
    rl.last_raw_terms = None
    def vloss(jit=0.0, use=None):
        tot = 0
        for b, kx, ka in val:
            x, xa = rt.tensor(b["x"]), rt.tensor(b["x_app"])
            k = pose(kx, ka) if use is None else use(kx, ka)
            g = torch.Generator().manual_seed(0)
            k = k + jit * torch.randn(k.shape, generator=g)
            with torch.no_grad(), rt.autocast():
                rl(psi(rt.tensor(tr.model.psi_pose(k)), xa), x); tot = tot + rl.last_raw_terms.float()
        return [round(float(t), 5) for t in tot / len(val)]
    r = {"val": vloss(), "train_s": time.time() - t0}
    if cond == "gt":
        for j in [0.02, 0.05, 0.1, 0.2]:
            r[f"jit{j}"] = vloss(j)
        r["with_app_pose"] = vloss(use=lambda kx, ka: ka)
        r["with_mean_pose"] = vloss(use=lambda kx, ka: mean.expand_as(kx))
        # gradient on keypoints at mean pose vs at gt+0.1 noise: does it point toward GT?
        cos = []
        for b, kx, ka in val:
            x, xa = rt.tensor(b["x"]), rt.tensor(b["x_app"])
            k0 = (kx + 0.1 * torch.randn_like(kx)).requires_grad_(True)
            with rt.autocast():
                l = rl(psi(rt.tensor(tr.model.psi_pose(k0)), xa), x)
            g, = torch.autograd.grad(l, k0)
            d = (k0 - kx).detach()
            cos.append(float(torch.nn.functional.cosine_similarity(g.flatten(1), d.flatten(1)).mean()))
            r["grad_norm"] = float(g.norm())
        r["grad_cos_toward_wrong"] = sum(cos) / len(cos)
    res[cond] = r
    print(cond, json.dumps(r), flush=True)
