"""TinyNAS stage 2: elastic supernet, extraction, BN recalibration, evolution, multi-process training."""
import json
import os
import random
import socket
import subprocess
import sys

import pytest
import torch

from interrupt import kill_after_first_checkpoint
from mcunet_lite import evolution as evo
from mcunet_lite import search_space as ss
from mcunet_lite import supernet as sn
from mcunet_lite.errors import UserError


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    n = sn.Supernet(0.3, 48)
    n.train()
    x = torch.randn(16, 3, 48, 48)
    for cfg in sn.sandwich(random.Random(0), n.space):  # move BN statistics off their defaults
        n.set_active(cfg)
        n(x)
    return n


def test_extracted_subnet_computes_what_the_supernet_computes(net):
    rng, x = random.Random(3), torch.randn(4, 3, 48, 48)
    for cfg in [sn.largest(0.3, 48), sn.smallest(0.3, 48)] + [ss.sample(rng, 0.3, 48) for _ in range(3)]:
        net.set_active(cfg)
        sn.recalibrate_bn(net, torch.randn(32, 3, 48, 48))
        net.eval()
        expected = net(x)
        m = sn.extract(net, cfg).eval()
        torch.testing.assert_close(m(x), expected, rtol=1e-5, atol=1e-5)
        assert sum(p.numel() for p in m.parameters()) < sum(p.numel() for p in net.parameters())


def test_elastic_kernels_share_the_centre_through_learned_transforms(net):
    dw = net.stages[1][0].depthwise
    w7, w5, w3 = (dw.kernel_weight(k, 8) for k in (7, 5, 3))
    assert w7.shape[-1] == 7 and w5.shape[-1] == 5 and w3.shape[-1] == 3
    torch.testing.assert_close(w5, dw.weight[:8, :, 1:6, 1:6])  # identity transform at initialisation
    with torch.no_grad():
        dw.transforms["5"].add_(torch.randn(25, 25) * 0.1)
    assert not torch.allclose(dw.kernel_weight(5, 8), dw.weight[:8, :, 1:6, 1:6])
    with torch.no_grad():
        dw.transforms["5"].copy_(torch.eye(25))


def test_recalibration_sets_statistics_of_the_active_subnet(net):
    net.set_active(sn.smallest(0.3, 48))
    images = torch.randn(64, 3, 48, 48) * 2 + 1
    sn.recalibrate_bn(net, images, batch_size=16)
    bn = net.stem[1]
    with torch.no_grad():
        pre = net.stem[0](images)
    torch.testing.assert_close(bn.running_mean, pre.mean((0, 2, 3)), rtol=1e-4, atol=1e-4)


def test_subnet_outside_the_space_is_refused(net):
    with pytest.raises(Exception, match="not in this supernet's space"):
        net.set_active(sn.largest(0.5, 48))


def test_evolution_respects_limits_and_improves_fitness():
    limits = evo.Limits(64 * 1024, 300 * 1024)
    seen = []

    def fitness(c):
        assert evo.fits(c, limits)
        seen.append(c)
        return c.cost.macs / 1e6

    r = evo.search(0.4, 80, limits, fitness, population=20, parents=5, mutations=10, crossovers=10, generations=5)
    assert r.history == sorted(r.history) and r.history[-1] > r.history[0]
    assert all(c.cost.sram <= limits.sram and c.cost.flash <= limits.flash for c in seen)
    assert r.evaluated == len(seen)  # each genome evaluated once


def test_joint_patch_search_reaches_a_higher_resolution_at_the_same_budget():
    limits = evo.Limits(80 * 1024, 512 * 1024)
    kw = dict(population=16, parents=4, mutations=8, crossovers=8, generations=4, seed=1)
    with pytest.raises(UserError, match="no subnet within 80 kB SRAM"):
        evo.search(0.5, 144, limits, lambda c: c.cost.macs, max_tries=200, **kw)   # layer by layer: none fits
    plain = evo.search(0.5, 96, limits, lambda c: c.cost.macs, **kw)
    joint = evo.search(0.5, 144, limits, lambda c: c.cost.macs, joint_patch=True, **kw)
    assert joint.best.patch is not None and joint.best.cost.sram <= limits.sram
    assert joint.best.cost.macs > plain.best.cost.macs


SCRIPT = """
import json, sys, torch, torch.distributed as dist
from mcunet_lite import supernet as sn
from mcunet_lite.errors import UserError
from mcunet_lite.data import VWW
torch.manual_seed(0)
x = torch.randint(0, 255, (64, 32, 32, 3), dtype=torch.uint8).numpy()
ds = VWW([i % 2 for i in range(64)], 32, "synthetic", "pyvww", "train", pixels=x)
net = sn.Supernet(0.2, 32)
sn.train(net, ds, epochs=1, batch_size=8, progress=False)
flat = torch.cat([p.detach().flatten() for p in net.parameters()])
out = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
dist.all_gather(out, flat)
with open(f"{sys.argv[1]}/rank{dist.get_rank()}.json", "w") as f:  # own file: the ranks' stdout interleaves
    json.dump({"rank": dist.get_rank(), "same": bool(torch.equal(out[0], out[1]))}, f)
"""


def test_supernet_trains_unchanged_under_torchrun(tmp_path):
    script = tmp_path / "train_supernet.py"
    script.write_text(SCRIPT)
    with socket.socket() as sock:  # a free port, so parallel runs do not collide
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
                        str(script), str(tmp_path)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [json.loads(f.read_text()) for f in sorted(tmp_path.glob("rank*.json"))]
    assert [d["rank"] for d in ranks] == [0, 1] and all(d["same"] for d in ranks)


def _random_images(n: int):
    from mcunet_lite.data import VWW
    x = torch.randint(0, 255, (n, 32, 32, 3), dtype=torch.uint8).numpy()
    return VWW([i % 2 for i in range(n)], 32, "synthetic", "pyvww", "train", pixels=x)


@pytest.mark.parametrize("n_images", [8, 160])  # 1 and 10 steps: OneCycleLR divided by zero at 10
def test_supernet_trains_for_any_number_of_steps(n_images):
    history = sn.train(sn.Supernet(0.2, 32), _random_images(n_images), epochs=1, batch_size=16, progress=False)
    assert len(history) == 1 and torch.isfinite(torch.tensor(history[0]["loss"]))


@pytest.mark.parametrize("largest_epochs", [0, 1])
def test_largest_first_epochs_train_only_the_full_network(largest_epochs):
    """The kernel transforms of the searched stages serve only kernels below 7, which the largest
    subnet never uses (the fixed first block always has kernel 3)."""
    torch.manual_seed(0)
    net = sn.Supernet(0.2, 32)
    sn.train(net, _random_images(32), epochs=1, batch_size=16, largest_epochs=largest_epochs, progress=False)
    transforms = [t for m in net.stages[1:].modules() if isinstance(m, sn.ElasticDepthwise)
                  for t in m.transforms.values()]
    unchanged = all(torch.equal(t, torch.eye(len(t))) for t in transforms)
    assert unchanged == (largest_epochs == 1)


def test_supernet_training_resumes_exactly(tmp_path, monkeypatch):
    """Killed after epoch 1 of 3 (the sandwich's random subnets included), the resumed run ends with
    the weights of an uninterrupted one."""
    def fresh():
        torch.manual_seed(0)
        return sn.Supernet(0.2, 32)
    ds = _random_images(32)
    whole = fresh()
    full = sn.train(whole, ds, epochs=3, batch_size=16, largest_epochs=1, progress=False, checkpoint=tmp_path / "a.pt")
    kill_after_first_checkpoint(monkeypatch, lambda: sn.train(fresh(), ds, epochs=3, batch_size=16, largest_epochs=1,
                                                              progress=False, checkpoint=tmp_path / "b.pt"))
    resumed = fresh()
    hist = sn.train(resumed, ds, epochs=3, batch_size=16, largest_epochs=1, progress=False,
                    checkpoint=tmp_path / "b.pt", resume=True)
    assert [h["loss"] for h in hist] == [h["loss"] for h in full]
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))


def test_recalibration_restores_each_layers_momentum_and_the_mode():
    net = sn.Supernet(0.2, 32)
    net.set_active(sn.smallest(0.2, 32))
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for i, bn in enumerate(bns):
        bn.momentum = 0.01 * (i % 3 + 1)
    net.eval()
    sn.recalibrate_bn(net, torch.randn(10, 3, 32, 32), batch_size=4)
    assert [bn.momentum for bn in bns] == [0.01 * (i % 3 + 1) for i in range(len(bns))]
    assert not net.training and int(bns[0].num_batches_tracked) == 3  # the stem's layer saw the 3 batches
