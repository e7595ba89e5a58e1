"""Every random stream of a run, by name, in one place.

Random draws are pure functions of ``(seed, rank, stream, step)``, so a resumed run
draws what an uninterrupted one would have. Two families of streams:

- the data samplers' numpy streams, ``data.pairs.step_rng(seed, step, stream)``
  (``numpy.random.SeedSequence([seed, stream, step])``);
- the trainers' torch generators, seeded by :func:`step_seed`.

The numbers are part of what a run draws: changing one changes every run's batches.
"""

from __future__ import annotations

# -- data samplers (numpy SeedSequence streams) ----------------------------------------
PAIR_STREAM = 1  # frame pairs of one video (data.pairs.PairSampler)
TPS_STREAM = 2  # thin-plate-spline pairs of single images (TPSPairSampler; its warps draw from stream + 100)
PRIOR_STREAM = 3  # prior poses (data.prior.PriorSampler)
PAIR_WARP_STREAM = 4  # warps of frame pairs (data.pair_warp=tps, WarpedPairSampler)
BACKGROUND_STREAM = 5  # background swaps of Phi's input (data.background_swap, BackgroundSwapSampler)

# -- trainers (torch generators, step_seed) ----------------------------------------------
POOL_STREAM = 4  # the history pool's picks (Trainer.train_step)
ETA_AUGMENT_STREAM = 5  # random similarities of eta's prior poses (train.eta_augment)
D_AUGMENT_STREAM = 6  # the same for the discriminator's real poses (train.d_augment)
SUPERVISED_BATCH_STREAM = 7  # the supervised baseline's batches (train.supervised.labelled_batch)
EQUIVARIANCE_STREAM = 8  # warps of the equivariance term (loss.equivariance_weight > 0)


def step_seed(seed: int, rank: int, stream: int, step: int) -> int:
    """The seed of one torch generator: stream ``stream`` at ``step`` of process ``rank``."""
    return (seed * 1_000_003 + rank * 10_007 + stream * 101 + step) % (2**63)
