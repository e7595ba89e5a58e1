"""eta pre-trained on poses inverts beta: the dual representation holds at 64 px."""

import torch

from keypointgan.data.synthetic import SynthParams, SyntheticWorld
from keypointgan.models.eta import SkeletonRegressor
from keypointgan.pose import get_skeleton, render_skeleton


def test_pretrained_eta_inverts_beta_on_unseen_poses():
    torch.manual_seed(0)
    sk = get_skeleton("synth_humanoid")
    world = SyntheticWorld(SynthParams(num_videos=160, num_frames=60))
    train = torch.from_numpy(__import__("numpy").concatenate([world.keypoints(v) for v in world.ids("prior")])).float()
    test = torch.from_numpy(__import__("numpy").concatenate([world.keypoints(v)[::6] for v in world.ids("test")])).float()
    eta = SkeletonRegressor(sk.num_keypoints, base_width=16, depth=3).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(eta.parameters(), 1e-3, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(0)

    def skel(kp):
        return render_skeleton(kp, sk.edges, 64, signed=True).contiguous(memory_format=torch.channels_last)

    for _ in range(400):
        kp = train[torch.randint(len(train), (16,), generator=g)]
        kp = kp + 0.03 * torch.randn(kp.shape, generator=g)  # jitter: more poses than the prior holds
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = (eta(skel(kp)).keypoints.float() - kp).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    eta.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        pred = eta(skel(test)).keypoints.float()
    error_percent = float((pred - test).norm(dim=-1).mean() / 2 * 100)  # % of image size
    assert error_percent < 1.5, error_percent
