"""History pool of generated skeleton images for the discriminator (CycleGAN, size 50)."""

from __future__ import annotations

import torch


class HistoryPool:
    """Keeps up to ``size`` past fakes; each query returns a batch mixing new and old ones.

    Each incoming image either goes straight to the discriminator or, with probability
    1/2 once the pool is full, swaps with a stored one (Shrivastava et al. 2017), which
    steadies the discriminator. Seeded and checkpointable (``state_dict``).
    """

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size <= 0:
            return batch
        out = []
        for img in batch.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand((), generator=self.generator) < 0.5:
                i = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.cat(out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {"generator": self.generator.get_state()}
        if self.images:
            state["images"] = torch.cat(self.images).cpu().contiguous()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> None:
        self.generator.set_state(state["generator"])
        self.images = [im.unsqueeze(0).to(device) for im in state["images"]] if "images" in state else []
