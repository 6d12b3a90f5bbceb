"""Graded checks of Lab 05, one-shot NAS: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import copy
import random
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import numpy as np

from .. import search_space
from .exercise import LIB, Case, Exercise
from .compare import Close, Floats, Property
from .inputs import np_rng

def elastic_kernel_reference(weight, transforms: dict, kernel: int) -> np.ndarray:
    """The supernet's own kernel for `kernel`: an ElasticDepthwise holding these weights and transforms."""
    import torch
    from .. import supernet
    dw = supernet.ElasticDepthwise(weight.shape[0], 1)
    with torch.no_grad():
        dw.weight.copy_(weight)
        for s, t in transforms.items():
            dw.transforms[str(s)].copy_(t)
        return dw.kernel_weight(kernel, weight.shape[0]).numpy()


def _elastic_kernel_cases(rng: random.Random) -> Iterable[Case]:
    import torch
    gen = torch.Generator().manual_seed(rng.randrange(1 << 31))
    for i in range(12):
        c, kernel = rng.randint(1, 12), (3, 5, 7)[i % 3]
        weight = torch.randn(c, 1, 7, 7, generator=gen)
        if i < 3:
            transforms, kind = {5: torch.eye(25), 3: torch.eye(9)}, "identity"
        elif i < 6:  # near identity, as after some training
            transforms, kind = {s: torch.eye(s * s) + 0.2 * torch.randn(s * s, s * s, generator=gen)
                                for s in (5, 3)}, "identity + noise"
        else:
            transforms, kind = {s: torch.randn(s * s, s * s, generator=gen) for s in (5, 3)}, "random"
        yield (f"<({c}, 1, 7, 7) random weight>, <{kind} transforms>, kernel={kernel}",
               (weight.clone(), {s: t.clone() for s, t in transforms.items()}, kernel),
               Close(elastic_kernel_reference(weight, transforms, kernel)))


def _genome(cfg) -> tuple:
    """A config as comparable values: width, resolution and every stage's (kernel, expand) list."""
    return cfg.width, cfg.resolution, tuple((s.depth, tuple((b.kernel, b.expand) for b in s.blocks))
                                            for s in cfg.stages)


class _Described:
    """A student's result that is a record of arrays and lists: in feedback it is what the expected
    side's "(yours: ...)" says, not a screenful of numbers."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return "what 'yours' says"


# ---------------------------------------------------------------------------- recalibrate_bn
def _bn_layers(net) -> list:
    import torch
    return [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]


def _bn_state(net) -> dict:
    """What a recalibration leaves in a network: every BatchNorm layer's running statistics (in
    module order, concatenated), every layer's momentum, and the network's mode."""
    bns = _bn_layers(net)
    return {"mean": np.concatenate([bn.running_mean.detach().cpu().numpy() for bn in bns]),
            "var": np.concatenate([bn.running_var.detach().cpu().numpy() for bn in bns]),
            "momentum": [bn.momentum for bn in bns], "training": bool(net.training)}


def _bn_view(args: tuple, result: Any) -> dict:
    """Beside the student's code: the state the call left in the network (it returns nothing)."""
    return _bn_state(args[0])


class _Recalibrated(Property):
    """What `recalibrate_bn` must leave in the network: the library's recalibrated statistics on
    the same images and batches (the cases run in float64, so to 1e-6), each layer's momentum and the network's mode
    as they were. The feedback names the first layer and channel that differ."""

    def __init__(self, state: dict, sizes: list[int]) -> None:
        self.state, self.ends, self.why = state, np.cumsum(sizes), ""

    def problem(self, got: Any) -> str:
        got = got.raw if isinstance(got, _Described) else got
        if not isinstance(got, dict) or set(got) != set(self.state):
            return "the network's BatchNorm layers could not be read"
        if got["training"] != self.state["training"]:
            mode = "training" if got["training"] else "evaluation"
            return f"the network was left in {mode} mode (restore the mode it was in)"
        if got["momentum"] != self.state["momentum"]:
            return f"momenta {got['momentum'][:3]}... (restore each layer's momentum)"
        for name in ("mean", "var"):
            want, mine = self.state[name], np.asarray(got[name], np.float64)
            if mine.shape != want.shape:
                return f"{mine.size} running_{name} values in all, not {want.size}"
            bad = np.flatnonzero(~np.isclose(mine, want, rtol=1e-6, atol=1e-9))
            if len(bad):
                i = int(bad[0])
                layer = int(np.searchsorted(self.ends, i, side="right"))
                channel = i - (int(self.ends[layer - 1]) if layer else 0)
                return (f"running_{name} of BatchNorm layer {layer}, channel {channel}: {mine[i]:.6g}, expected "
                        f"{want[i]:.6g} ({len(bad)} of {want.size} values differ)")
        return ""

    def describe(self) -> str:
        mode = "training" if self.state["training"] else "evaluation"
        return (f"running statistics of {len(self.ends)} BatchNorm layers re-estimated on these batches, "
                f"momenta restored, {mode} mode kept")


@contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one thread while the grader builds a case: these networks are tiny, and two threads
    on a busy 2-core machine spin and run ten times slower (the lab's set-up cell does the same)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _recalibrate_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(6):
        with _one_thread():
            case = _recalibrate_case(rng, i)
        yield case


def _plain_cnn(rng: random.Random):
    """A random stack of conv + BatchNorm2d + ReLU6 of torch's own classes."""
    import torch.nn as nn
    layers, cin = [], 3
    for _ in range(rng.randint(2, 4)):
        cout = rng.choice((4, 8, 12))
        layers += [nn.Conv2d(cin, cout, 3, rng.choice((1, 2)), 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6()]
        cin = cout
    return nn.Sequential(*layers)


def _recalibrate_case(rng: random.Random, i: int) -> Case:
    """A small random supernet with a random subnet active (or a plain conv/BatchNorm network),
    statistics and momenta off their defaults, and a few batches of images."""
    import torch
    from .. import supernet
    gen = torch.Generator().manual_seed(rng.randrange(1 << 31))
    width, res = rng.choice((0.2, 0.3)), rng.choice((32, 48))
    with torch.random.fork_rng():  # initialisations draw from torch's global generator
        torch.manual_seed(rng.randrange(1 << 31))
        if i % 3 == 2:  # plain BatchNorm2d layers (torch's own classes: the case must pickle)
            net, kind = _plain_cnn(rng), "plain conv/BatchNorm network"
        else:
            net, kind = supernet.Supernet(width, res), f"supernet at width {width}"
            net.set_active(search_space.sample(rng, width, res))
    momentum = (0.1, 0.01, 0.3)[i % 3]
    with torch.no_grad():  # statistics and batch counts as some earlier training left them
        for bn in _bn_layers(net):
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen))
            bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) * 2 + 0.1)
            bn.num_batches_tracked.fill_(rng.randint(1, 500))
            bn.momentum = momentum
    net.train(i % 2 == 1)
    batch = rng.randint(3, 8)
    n = batch * rng.randint(2, 3) + rng.choice((0, 2, batch - 1))  # the last batch: full, or of 2 or more
    scale, shift = rng.uniform(0.5, 2), rng.uniform(-1, 1)
    images = torch.randn(n, 3, res, res, generator=gen, dtype=torch.float64) * scale + shift
    net = net.double()  # float64: the statistics of 50 layers agree to 1e-6 whatever the thread count
    ref = copy.deepcopy(net)
    supernet.recalibrate_bn(ref, images.clone(), batch)
    sizes = [bn.num_features for bn in _bn_layers(ref)]
    return (f"<{kind}, {'training' if net.training else 'eval'} mode, momentum {momentum}>, <{n} images of "
            f"{res}x{res}>, batch_size={batch}", (net, images, batch), _Recalibrated(_bn_state(ref), sizes))


def _recalibrate_bn(net, images, batch_size: int) -> None:
    from .. import supernet
    supernet.recalibrate_bn(net, images, batch_size)


# -------------------------------------------------------------------------- evolution_search
def _limits(rng: random.Random, width: float, resolution: int):
    """Limits at a random quantile (40-80%) of each cost over a few random subnets of the space."""
    from .. import evolution as evo
    costs = [search_space.cost(search_space.sample(rng, width, resolution)) for _ in range(20)]
    at = lambda field: sorted(getattr(c, field) for c in costs)[rng.randint(8, 15)]
    return evo.Limits(at("sram"), at("flash"), at("macs") if rng.random() < 0.7 else 0)


def _evolution_view(args: tuple, result: Any) -> dict:
    """Beside the student's code: the returned population as genomes (each with its fitness and
    whether it fits the limits) and the history."""
    from .. import evolution as evo
    population, history = result
    return {"genomes": [_genome(c.cfg) for c in population], "fitness": [float(c.accuracy) for c in population],
            "fits": [evo.fits(evo.Candidate(c.cfg), args[2]) for c in population],
            "history": [float(h) for h in history]}


class _Evolved(Property):
    """What `evolution_search` must return: the library loop's final population (genomes and
    fitness, best first) and history, given the same rng. Exact, not a property such as "every
    subnet fits and the best is at least the library's": a search is random, so a property either
    fails correct loops that drew unluckily or passes loops with an extra generation, parents
    drawn once per child, or the worst kept; the same draws in the documented order make every
    correct loop agree exactly. The feedback first names what breaks the algorithm (a subnet over
    the limits, a wrong number of generations or candidates, an unsorted population), then where
    the draws part from the library's."""

    def __init__(self, result) -> None:
        self.genomes = [_genome(c.cfg) for c in result.population]
        self.fitness = [float(c.accuracy) for c in result.population]
        self.history, self.why = [float(h) for h in result.history], ""

    def problem(self, got: Any) -> str:
        got = got.raw if isinstance(got, _Described) else got
        if not isinstance(got, dict) or set(got) != {"genomes", "fitness", "fits", "history"}:
            return "not (population, history), each candidate with its fitness in .accuracy"
        if not all(got["fits"]):
            i = got["fits"].index(False)
            return f"candidate {i} of the population exceeds the limits (keep only subnets that fit)"
        if len(got["history"]) != len(self.history):
            return f"{len(got['history'])} history entries (one before each generation, one after the last)"
        if len(got["genomes"]) != len(self.genomes):
            return f"a population of {len(got['genomes'])} (the parents and the children)"
        if got["fitness"] != sorted(got["fitness"], reverse=True):
            return "the population is not sorted best first"
        if got["history"] != self.history:
            g = next(i for i, (a, b) in enumerate(zip(got["history"], self.history)) if a != b)
            return (f"best fitness {got['history'][g]:.6g} before generation {g}, the library's loop has "
                    f"{self.history[g]:.6g} (draws in another order?)")
        if (got["genomes"], got["fitness"]) != (self.genomes, self.fitness):
            i = next(i for i, (a, b) in enumerate(zip(got["genomes"], self.genomes)) if a != b)
            return f"candidate {i} of the final population differs from the library's (draws in another order?)"
        return ""

    def describe(self) -> str:
        return (f"the library loop's final population of {len(self.genomes)} (best fitness {self.fitness[0]:.6g}) "
                f"and history {[round(h, 6) for h in self.history]}")


def _evolution_cases(rng: random.Random) -> Iterable[Case]:
    from .. import evolution as evo
    from .. import predictor
    nrng = np_rng(rng)
    for i in range(5):
        width, res = rng.choice((0.2, 0.3)), rng.choice((48, 64))
        limits = _limits(rng, width, res)
        fitness = predictor.Predictor(nrng.normal(0, 0.02, predictor.SIZE), 0.6)
        parents = rng.randint(2, 4)
        sizes = (rng.randint(parents, 10), parents, rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 4))
        seed = rng.randrange(1 << 30)
        result = evo.search(width, res, limits, fitness, *sizes, rng=random.Random(seed))
        yield (f"{width}, {res}, {limits}, <a random linear fitness>, random.Random({seed}), population={sizes[0]}, "
               f"parents={sizes[1]}, mutations={sizes[2]}, crossovers={sizes[3]}, generations={sizes[4]}",
               (width, res, limits, fitness, random.Random(seed), *sizes), _Evolved(result))


def _evolution_search(width, resolution, limits, fitness, rng, population, parents, mutations, crossovers,
                      generations) -> tuple[list, list]:
    from .. import evolution as evo
    r = evo.search(width, resolution, limits, fitness, population, parents, mutations, crossovers, generations,
                   rng=rng)
    return r.population, r.history


# ------------------------------------------------------------------------ accuracy_predictor
def _predictor_cases(rng: random.Random) -> Iterable[Case]:
    from .. import predictor
    nrng = np_rng(rng)
    for i in range(6):
        width, res = rng.choice(search_space.WIDTHS), rng.choice(search_space.RESOLUTIONS)
        n_train, n_test = rng.randint(8, 80), rng.randint(3, 12)
        cfgs = [search_space.sample(rng, width, res) for _ in range(n_train + n_test)]
        hidden = predictor.Predictor(nrng.normal(0, 0.02, predictor.SIZE), rng.uniform(0.5, 0.8))
        accs = hidden.predict(cfgs[:n_train]) + nrng.normal(0, 0.01, n_train)
        if i % 2:  # as measured on 160 images
            accs = np.round(accs * 160) / 160
        lam = rng.choice((0.1, 0.5, 1.0, 3.0, 10.0))
        expected = predictor.fit(cfgs[:n_train], accs, lam).predict(cfgs[n_train:])
        yield (f"<{n_train} subnets at width {width}, {res}px>, <their accuracies, mean {accs.mean():.3f}>, "
               f"<{n_test} other subnets>, lam={lam}", (cfgs[:n_train], [float(a) for a in accs], cfgs[n_train:], lam),
               Close(expected))


def _accuracy_predictor(train_cfgs, train_accs, test_cfgs, lam: float) -> np.ndarray:
    from .. import predictor
    return predictor.fit(train_cfgs, train_accs, lam).predict(test_cfgs)

def _elastic_kernel(weight, transforms: dict, kernel: int):
    import torch
    return torch.as_tensor(elastic_kernel_reference(weight, transforms, kernel))


LAB = "05_one_shot_nas"
EXERCISES: list[Exercise] = [
    Exercise("elastic_kernel", "elastic_kernel", 2, _elastic_kernel_cases, Floats,
             (LIB + "supernet.ElasticDepthwise.kernel_weight",), reference=_elastic_kernel),
    Exercise("recalibrate_bn", "recalibrate_bn", 2, _recalibrate_cases, _Described, (LIB + "supernet.recalibrate_bn",),
             view=_bn_view, reference=_recalibrate_bn),
    Exercise("evolution_search", "evolution_search", 3, _evolution_cases, _Described, (LIB + "evolution.search",),
             view=_evolution_view, reference=_evolution_search),
    Exercise("accuracy_predictor", "accuracy_predictor", 3, _predictor_cases, Floats,
             (LIB + "predictor.fit", LIB + "predictor.encode", LIB + "predictor.Predictor.predict",
              LIB + "predictor.Predictor.__call__"), reference=_accuracy_predictor),
]
