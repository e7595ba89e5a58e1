"""Training: the two-stage KeypointGAN trainer, the supervised baseline, EMA, history pool, DDP."""
