"""Supervised post-processing: a linear (ridge) map from predicted to ground-truth keypoints.

Self-supervised detectors output keypoints that are not the annotated ones; the
standard benchmark step (paper section 5, "supervised post-processing") fits a linear
regressor from the flattened predictions to the flattened ground truth on the
training set and applies it to the test set. The KeypointGAN release (following the
authors' IMM code) uses ridge regression with ``alpha = 0``, i.e. least squares.
KeypointGAN does not need this step; it is here for comparison with other methods.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]

__all__ = ["RidgeRegressor"]


def _flat(kp: Any, name: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """``(N, K, 2)`` keypoints -> ``(N, 2K)`` float64 rows, plus the per-sample shape."""
    if isinstance(kp, torch.Tensor):
        kp = kp.detach().cpu().to(torch.float64).numpy()
    x = np.asarray(kp, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"{name}: expected (N, K, 2) keypoints, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x.reshape(x.shape[0], -1), tuple(x.shape[1:])


class RidgeRegressor:
    """Closed-form ridge regression ``y = x W + b`` on flattened keypoints.

    Minimises ``||Y - X W - 1 b||^2 + alpha ||W||^2`` (the intercept ``b`` is not
    penalised; the data are centred first, as in scikit-learn's ``Ridge``).
    ``alpha = 0`` is ordinary least squares via ``numpy.linalg.lstsq`` (the minimum-norm
    solution when rank deficient); ``alpha > 0`` solves the augmented least-squares
    system ``[Xc; sqrt(alpha) I] W = [Yc; 0]``, which equals the ridge normal equations
    without forming ``Xc^T Xc``.
    """

    def __init__(self, alpha: float = 0.0, fit_intercept: bool = True) -> None:
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        self.fit_intercept = bool(fit_intercept)
        self.coef_: Optional[np.ndarray] = None  # (D_in, D_out)
        self.intercept_: Optional[np.ndarray] = None  # (D_out,)
        self.in_shape: Optional[tuple[int, ...]] = None  # per-sample input shape, e.g. (K, 2)
        self.out_shape: Optional[tuple[int, ...]] = None  # per-sample output shape, e.g. (K', 2)

    @property
    def fitted(self) -> bool:
        return self.coef_ is not None

    def fit(self, pred_kp: ArrayLike, gt_kp: ArrayLike) -> "RidgeRegressor":
        """Fit on predictions ``(N, K, 2)`` and ground truth ``(N, K', 2)``; returns ``self``."""
        x, in_shape = _flat(pred_kp, "pred_kp")
        y, out_shape = _flat(gt_kp, "gt_kp")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"pred_kp has {x.shape[0]} samples, gt_kp {y.shape[0]}")
        if self.fit_intercept:
            x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
        else:
            x_mean, y_mean = np.zeros(x.shape[1]), np.zeros(y.shape[1])
        xc, yc = x - x_mean, y - y_mean
        if self.alpha > 0:
            d = x.shape[1]
            xc = np.vstack([xc, np.sqrt(self.alpha) * np.eye(d)])
            yc = np.vstack([yc, np.zeros((d, y.shape[1]))])
        w, *_ = np.linalg.lstsq(xc, yc, rcond=None)
        self.coef_, self.intercept_ = w, y_mean - x_mean @ w
        self.in_shape, self.out_shape = in_shape, out_shape
        return self

    def predict(self, pred_kp: ArrayLike) -> np.ndarray:
        """Map predictions ``(N, K, 2)`` to ``(N, K', 2)`` (float64 numpy)."""
        if not self.fitted:
            raise RuntimeError("RidgeRegressor.predict called before fit (or load)")
        x, in_shape = _flat(pred_kp, "pred_kp")
        if in_shape != self.in_shape:
            raise ValueError(f"pred_kp: fitted on samples of shape {self.in_shape}, got {in_shape}")
        return (x @ self.coef_ + self.intercept_).reshape((x.shape[0],) + tuple(self.out_shape))

    # -- persistence (plain JSON or npz; never pickle) --------------------------------
    def to_dict(self) -> dict[str, Any]:
        if not self.fitted:
            raise RuntimeError("RidgeRegressor: nothing to save before fit")
        return {"alpha": self.alpha, "fit_intercept": self.fit_intercept,
                "in_shape": list(self.in_shape), "out_shape": list(self.out_shape),
                "coef": self.coef_.tolist(), "intercept": self.intercept_.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RidgeRegressor":
        r = cls(alpha=float(d["alpha"]), fit_intercept=bool(d["fit_intercept"]))
        r.in_shape = tuple(int(v) for v in d["in_shape"])
        r.out_shape = tuple(int(v) for v in d["out_shape"])
        r.coef_ = np.asarray(d["coef"], dtype=np.float64).reshape(int(np.prod(r.in_shape)), -1)
        r.intercept_ = np.asarray(d["intercept"], dtype=np.float64).reshape(-1)
        if r.coef_.shape[1] != int(np.prod(r.out_shape)) or r.intercept_.shape != (r.coef_.shape[1],):
            raise ValueError("RidgeRegressor: saved coef/intercept do not match the saved shapes")
        return r

    def save(self, path: Union[str, Path]) -> None:
        """Write ``.json`` (human-readable, float64 round-trips exactly) or ``.npz``."""
        p = Path(path)
        d = self.to_dict()
        if p.suffix == ".json":
            p.write_text(json.dumps(d))
        elif p.suffix == ".npz":
            np.savez(p, **{k: np.asarray(v) for k, v in d.items()})
        else:
            raise ValueError(f"{p}: use a .json or .npz file name")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "RidgeRegressor":
        p = Path(path)
        if p.suffix == ".json":
            return cls.from_dict(json.loads(p.read_text()))
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                return cls.from_dict({k: z[k].tolist() for k in z.files})
        raise ValueError(f"{p}: use a .json or .npz file name")
