"""The accuracy predictor (OFA section 3.4): the one-hot encoding, ridge regression with an
unpenalised intercept, Kendall's tau, and the predictor as the evolution's fitness."""
import random

import numpy as np
import pytest

from mcunet_lite import evolution as evo
from mcunet_lite import predictor
from mcunet_lite import search_space as ss


def _subnets(n, seed=0, width=0.3, resolution=64):
    rng = random.Random(seed)
    return [ss.sample(rng, width, resolution) for _ in range(n)]


def test_encoding_is_one_hot_per_used_slot_and_zero_for_skipped_ones():
    for cfg in _subnets(20):
        x = predictor.encode(cfg).reshape(sum(predictor.SLOTS), predictor.FEATURES)
        assert x.size == predictor.SIZE == 126
        row = 0
        for slots, stage in zip(predictor.SLOTS, cfg.stages[1:]):
            for j in range(slots):
                if j < stage.depth:
                    b = stage.blocks[j]
                    assert x[row + j, :3].tolist() == [float(k == b.kernel) for k in ss.KERNELS]
                    assert x[row + j, 3:].tolist() == [float(e == b.expand) for e in ss.EXPANDS]
                else:
                    assert not x[row + j].any()
            row += slots


def test_ridge_recovers_a_linear_target_and_never_shrinks_the_intercept():
    cfgs = _subnets(400, seed=1)
    truth = predictor.Predictor(np.random.default_rng(0).normal(0, 0.05, predictor.SIZE), 0.6)
    y = truth.predict(cfgs)
    fitted = predictor.fit(cfgs[:300], y[:300], lam=1e-6)
    np.testing.assert_allclose(fitted.predict(cfgs[300:]), y[300:], atol=1e-6)
    strong = predictor.fit(cfgs[:300], y[:300], lam=10.0)  # shifting every accuracy shifts every prediction
    shifted = predictor.fit(cfgs[:300], y[:300] + 0.25, lam=10.0)
    np.testing.assert_allclose(shifted.predict(cfgs[300:]), strong.predict(cfgs[300:]) + 0.25, atol=1e-12)
    constant = predictor.fit(cfgs[:10], [0.7] * 10, lam=3.0)
    np.testing.assert_allclose(constant.predict(cfgs[300:]), 0.7)
    c = evo.Candidate(cfgs[0])  # callable on a candidate: a fitness for the evolution
    assert fitted(c) == pytest.approx(float(fitted.predict([cfgs[0]])[0]))


def test_kendall_tau_matches_tau_b():
    assert predictor.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert predictor.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert predictor.kendall_tau([1, 1, 1], [1, 2, 3]) == 0.0  # no ranking on one side
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = rng.integers(0, 5, 30), rng.integers(0, 5, 30)  # many ties, as accuracies on few images
        assert predictor.kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic)


def test_search_draws_from_the_given_rng_as_from_its_seed():
    limits = evo.Limits(*(sorted(getattr(ss.cost(c), f) for c in _subnets(20, 2, 0.2, 48))[12]
                          for f in ("sram", "flash", "macs")))
    fitness = predictor.Predictor(np.random.default_rng(1).normal(0, 0.02, predictor.SIZE), 0.5)
    kw = dict(population=8, parents=3, mutations=3, crossovers=3, generations=3)
    a = evo.search(0.2, 48, limits, fitness, seed=5, **kw)
    b = evo.search(0.2, 48, limits, fitness, rng=random.Random(5), **kw)
    assert a.history == b.history and [c.key() for c in a.population] == [c.key() for c in b.population]
    assert all(evo.fits(c, limits) for c in a.population) and a.history == sorted(a.history)
