"""Image metrics: a Frechet distance in the feature space of a small classifier trained on the digits training split
(the FID recipe of Heusel et al. 2017 with a task-sized network), class accuracy of class-conditional samples, and
inpainting error against mean imputation.

Every function takes values in state space (``x [B, N, C]`` of :class:`~graphdiff.adapters.ImageGrid`, intensities
in [-1, 1]); reports carry the classifier's held-out accuracy and the sample counts, so numbers are comparable
only under the same classifier seed and reference split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import linalg
from torch import Tensor, nn

from ..errors import ConfigError


class FeatureClassifier(nn.Module):
    """MLP ``in -> 256 -> 128 (features) -> classes``; :meth:`features` is the penultimate layer."""

    def __init__(self, dim: int, classes: int, width: int = 256, feature_dim: int = 128):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, width), nn.SiLU(), nn.Linear(width, feature_dim), nn.SiLU())
        self.head = nn.Linear(feature_dim, classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x.flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@dataclass
class TrainedClassifier:
    """A classifier and its accuracy on the held-out split it was checked on."""

    model: FeatureClassifier
    accuracy: float
    seed: int
    train_size: int
    test_size: int

    @torch.no_grad()
    def features(self, x: Tensor) -> np.ndarray:
        self.model.eval()
        return self.model.features(torch.as_tensor(x, dtype=torch.float32)).double().numpy()

    @torch.no_grad()
    def predict(self, x: Tensor) -> np.ndarray:
        self.model.eval()
        return self.model(torch.as_tensor(x, dtype=torch.float32)).argmax(-1).numpy()


def train_classifier(x_train: Tensor, y_train, x_test: Tensor, y_test, *, seed: int = 0, epochs: int = 60,
                     batch_size: int = 128, lr: float = 2e-3) -> TrainedClassifier:
    """Train :class:`FeatureClassifier` with Adam and light Gaussian input noise (features stay informative on
    slightly noisy samples); report its accuracy on ``(x_test, y_test)``."""
    x_train, x_test = torch.as_tensor(x_train, dtype=torch.float32), torch.as_tensor(x_test, dtype=torch.float32)
    y_train = torch.as_tensor(np.asarray(y_train), dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = FeatureClassifier(x_train[0].numel(), int(y_train.max()) + 1)
    torch.random.set_rng_state(torch_state)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(len(x_train), generator=g)
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            xb = x_train[idx] + 0.1 * torch.randn(x_train[idx].shape, generator=g)
            loss = nn.functional.cross_entropy(model(xb), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    clf = TrainedClassifier(model, 0.0, seed, len(x_train), len(x_test))
    clf.accuracy = float((clf.predict(x_test) == np.asarray(y_test)).mean())
    return clf


def digits_classifier(seed: int = 0, root=None) -> TrainedClassifier:
    """The classifier of the digits metrics: trained on the digits train split, accuracy on the test split."""
    from ..data.images import Digits

    ds = Digits(root)
    tr, te = ds.split("train"), ds.split("test")
    xtr, ytr = tr.arrays()
    xte, yte = te.arrays()
    g = ds.grid
    return train_classifier(g.to_state(torch.from_numpy(xtr)).x, ytr, g.to_state(torch.from_numpy(xte)).x, yte,
                            seed=seed)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` between Gaussians fitted to feature rows."""
    if len(a) < 2 or len(b) < 2:
        raise ConfigError(f"Frechet distance needs at least 2 samples per set, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(sa @ sb)
    if not np.isfinite(covmean).all():  # near-singular product: regularise as the FID reference code does
        eps = np.eye(len(sa)) * 1e-6
        covmean = linalg.sqrtm((sa + eps) @ (sb + eps))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa + sb - 2 * np.real(covmean)))


def classifier_fd(samples: Tensor, reference: Tensor, clf: TrainedClassifier) -> dict:
    """Frechet distance of ``samples`` to ``reference`` (``[B, N, C]`` state values) in ``clf``'s feature space."""
    fd = frechet_distance(clf.features(samples), clf.features(reference))
    return {"fd": fd, "samples": int(len(samples)), "reference": int(len(reference)),
            "classifier_accuracy": clf.accuracy, "classifier_seed": clf.seed}


def classifier_fd_floor(train: Tensor, reference: Tensor, clf: TrainedClassifier, n: int, seed: int = 0) -> dict:
    """:func:`classifier_fd` of ``n`` training images (drawn with ``seed``) to ``reference``: what a perfect sampler
    of the training data scores with ``n`` samples, the metric's floor at that size."""
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
    return classifier_fd(train[pick], reference, clf)


def class_accuracy(samples: Tensor, labels, clf: TrainedClassifier) -> float:
    """Share of class-conditional ``samples`` the classifier assigns to the class they were asked for."""
    return float((clf.predict(samples) == np.asarray(labels)).mean())


def inpainting_mse(pred: Tensor, truth: Tensor, known: Tensor) -> float:
    """Mean squared error on the entries that were NOT observed (``known`` False)."""
    miss = ~torch.as_tensor(known, dtype=torch.bool).expand_as(truth)
    if not bool(miss.any()):
        raise ConfigError("inpainting_mse: every entry is observed; nothing to compare")
    return float(((torch.as_tensor(pred) - truth) ** 2)[miss].mean())


def mean_imputation(train: Tensor, like: Tensor) -> Tensor:
    """The baseline completion: the per-node training mean ``[1, N, C]`` broadcast like ``like``."""
    return torch.as_tensor(train).mean(0, keepdim=True).expand_as(like)


__all__ = ["FeatureClassifier", "TrainedClassifier", "train_classifier", "digits_classifier", "frechet_distance",
           "classifier_fd", "class_accuracy", "inpainting_mse", "mean_imputation"]
