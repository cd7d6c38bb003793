"""Image metrics: the Frechet distance, class accuracy and inpainting error, on cases with known answers."""

import numpy as np
import torch

from graphdiff.metrics.images import (class_accuracy, frechet_distance, inpainting_mse, mean_imputation,
                                      train_classifier)


def test_frechet_distance_known_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) < 1e-6
    shifted = a + np.array([1.0, 2.0, 0.0])
    assert abs(frechet_distance(a, shifted) - 5.0) < 1e-6  # same covariance: |mu_a - mu_b|^2
    wide = a * 2.0
    assert abs(frechet_distance(a, wide) - 3.0) < 0.1  # tr(1 + 4 - 2 * 2) per axis


def test_classifier_features_separate_classes_and_report_accuracy():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(200, 8, 1, generator=g) * 0.3 - 0.5
    x1 = torch.randn(200, 8, 1, generator=g) * 0.3 + 0.5
    x, y = torch.cat([x0, x1]), np.array([0] * 200 + [1] * 200)
    clf = train_classifier(x[::2], y[::2], x[1::2], y[1::2], epochs=6, batch_size=50)
    assert clf.accuracy > 0.95
    assert class_accuracy(x1[:50], np.ones(50, int), clf) > 0.9
    assert class_accuracy(x1[:50], np.zeros(50, int), clf) < 0.1


def test_inpainting_mse_counts_hidden_entries_only():
    truth = torch.zeros(2, 4, 1)
    pred = torch.tensor([[[9.0], [1.0], [9.0], [1.0]]] * 2)
    known = torch.tensor([[[True], [False], [True], [False]]] * 2)
    assert inpainting_mse(pred, truth, known) == 1.0
    base = mean_imputation(torch.tensor([[[2.0]] * 4, [[4.0]] * 4]), truth)
    assert base.shape == truth.shape and float(base.mean()) == 3.0
