"""genlab's image feature classifier: it learns, its cache round-trips and heals, conditional accuracy, evaluate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genlab
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, DataError
from genlab.evaluation import evaluate
from genlab.metrics import features as features_module
from genlab.metrics.features import (ClassifierConfig, class_counts, conditional_accuracy, feature_classifier,
                                     sample_per_class)
from genlab.models.base import DataInfo
from genlab.nn.classifier import ImageClassifier

#: A short training run for the tests that retrain on purpose.
QUICK = ClassifierConfig(min_steps=150, epochs=1)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return genlab.datasets.load("digits")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("classifiers")


@pytest.fixture(scope="module")
def classifier(digits, cache, single_thread_module):
    return feature_classifier(digits, cache_dir=cache)


class ImagesOfClass:
    """A stand-in conditional model: returns real test images of the requested class plus ``offset``."""

    def __init__(self, data: Dataset, offset: int = 0) -> None:
        self.data, self.offset = data, offset
        self.data_ = DataInfo("images", data.shape, data.class_names)

    def sample(self, n, *, condition=None, generator=None):
        label = (condition + self.offset) % self.data.n_classes
        pool = np.flatnonzero(self.data.y_test == label)
        return self.data.x_test[pool[torch.randint(len(pool), (n,), generator=generator).numpy()]]


def test_network_shapes_for_digits_and_mnist_sizes():
    for shape in [(1, 8, 8), (1, 28, 28), (3, 32, 32)]:
        network = ImageClassifier(shape, 10, width=4, features=32)
        x = torch.rand(2, *shape)
        assert network.features(x).shape == (2, 32) and network(x).shape == (2, 10)
    with pytest.raises(genlab.GenlabError, match="at least 4x4"):
        ImageClassifier((1, 3, 3), 10)


def test_classifier_learns_digits(classifier, digits):
    assert classifier.test_accuracy >= 0.9
    assert classifier.class_names == digits.class_names and classifier.path.is_file()
    features = classifier.features(digits.x_test[:7])
    assert features.shape == (7, classifier.dim) and features.dtype == np.float64 and (features >= 0).all()
    predicted = classifier.predict(digits.x_test)
    assert predicted.dtype == np.int64 and np.mean(predicted == digits.y_test) == classifier.test_accuracy


def test_cache_round_trip_gives_identical_features_without_training(classifier, digits, cache, monkeypatch):
    monkeypatch.setattr(features_module, "_train", lambda *args: pytest.fail("a valid cache must not retrain"))
    monkeypatch.setenv("GENLAB_CACHE", str(cache))
    loaded = feature_classifier(digits)  # the cache folder from the environment
    assert loaded.path == classifier.path and loaded.test_accuracy == classifier.test_accuracy
    np.testing.assert_array_equal(loaded.features(digits.x_test), classifier.features(digits.x_test))


@pytest.mark.parametrize("damage", ["garbage", "flipped weight byte", "truncated"])
def test_a_damaged_cache_file_is_retrained_identically(digits, tmp_path, damage, monkeypatch):
    first = feature_classifier(digits, cache_dir=tmp_path, config=QUICK)
    data = first.path.read_bytes()
    if damage == "garbage":
        first.path.write_bytes(b"not a safetensors file")
    elif damage == "flipped weight byte":
        first.path.write_bytes(data[:-1] + bytes([data[-1] ^ 0x55]))
    else:
        first.path.write_bytes(data[: len(data) // 2])
    again = feature_classifier(digits, cache_dir=tmp_path, config=QUICK)
    # Training is seeded through a torch.Generator, so the retrained network is the same network.
    np.testing.assert_array_equal(again.features(digits.x_test), first.features(digits.x_test))
    monkeypatch.setattr(features_module, "_train", lambda *args: pytest.fail("the rewritten cache must be valid"))
    assert feature_classifier(digits, cache_dir=tmp_path, config=QUICK).test_accuracy == first.test_accuracy


def test_a_cache_file_for_other_data_is_not_used(digits, tmp_path, monkeypatch):
    first = feature_classifier(digits, cache_dir=tmp_path, config=QUICK)
    trained = []
    train = features_module._train
    monkeypatch.setattr(features_module, "_train", lambda *args: trained.append(args[0].name) or train(*args))
    fewer = Dataset("digits", "images", digits.x_train[:-1], digits.x_test, digits.y_train[:-1], digits.y_test,
                    digits.class_names)
    second = feature_classifier(fewer, cache_dir=tmp_path, config=QUICK)
    assert second.digest != first.digest and second.path != first.path and trained == ["digits"]
    # Even under the other data's file name, metadata for other data is refused.
    second.path.write_bytes(first.path.read_bytes())
    feature_classifier(fewer, cache_dir=tmp_path, config=QUICK)
    assert trained == ["digits", "digits"]


def test_unlabelled_or_wrong_shape_inputs_are_refused(digits, classifier):
    unlabelled = Dataset("digits", "images", digits.x_train, digits.x_test)
    with pytest.raises(DataError, match="labelled images"):
        feature_classifier(unlabelled)
    with pytest.raises(DataError, match=r"\(n, 1, 8, 8\)"):
        classifier.features(np.zeros((2, 64), np.float32))


def test_conditional_accuracy_of_real_images_is_the_classifier_accuracy(digits, classifier):
    honest = conditional_accuracy(ImagesOfClass(digits), classifier, n_per_class=200,
                                  generator=torch.Generator().manual_seed(0))
    wrong = conditional_accuracy(ImagesOfClass(digits, offset=1), classifier, n_per_class=200,
                                 generator=torch.Generator().manual_seed(0))
    assert honest == pytest.approx(classifier.test_accuracy, abs=0.03)
    assert wrong < 0.03


def test_conditional_accuracy_needs_the_classifier_classes(digits, classifier):
    model = ImagesOfClass(digits)
    model.data_ = DataInfo("images", digits.shape, None)
    with pytest.raises(ConfigError, match="classes"):
        conditional_accuracy(model, classifier)


def test_class_counts_follow_label_proportions():
    counts = class_counts(np.array([0, 0, 0, 1, 2, 2]), 10, 4)
    assert counts.tolist() == [5, 2, 3, 0] and counts.sum() == 10
    x, y = sample_per_class(ImagesOfClass(genlab.datasets.load("digits")), [2, 0, 3] + [0] * 7,
                            generator=torch.Generator().manual_seed(1))
    assert x.shape == (5, 1, 8, 8) and y.tolist() == [0, 0, 2, 2, 2]


def test_evaluate_on_digits_uses_classifier_features_with_floor(digits, classifier, cache):
    model = genlab.fit(digits, family="gaussian", n_components=1, reg_covar=1e-3)
    report = evaluate(model, digits, n_bootstrap=10, feature_cache=cache)
    names = {"precision", "recall", "density", "coverage", "frechet", "kid", "memorised", "exact_copies", "nll",
             "conditional_accuracy"}
    assert set(report.metrics) == names and set(report.intervals) == names
    assert report.notes["frechet"] == f"genlab classifier features (test acc {classifier.test_accuracy:.1%})"
    assert report.floor["conditional_accuracy"] == pytest.approx(classifier.test_accuracy)
    assert report.floor["frechet"] < report.metrics["frechet"]
    assert 0.3 < report.metrics["conditional_accuracy"] <= 1.0
    for name, value in report.metrics.items():
        low, high = report.intervals[name]
        assert low <= value <= high, (name, low, value, high)
    assert evaluate(model, digits, n_bootstrap=10, feature_cache=cache).to_dict() == report.to_dict()


def test_evaluate_on_unlabelled_images_stays_in_pixel_space(digits, tmp_path):
    unlabelled = Dataset("digits-unlabelled", "images", digits.x_train, digits.x_test)
    model = genlab.fit(unlabelled, family="gaussian", n_components=1, reg_covar=1e-3)
    report = evaluate(model, unlabelled, n_bootstrap=5, feature_cache=tmp_path)
    assert report.notes["frechet"] == "pixel space" and "conditional_accuracy" not in report.metrics
    assert not list(tmp_path.iterdir())
