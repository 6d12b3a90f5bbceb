"""Training: fit learns, repeats exactly with a seed, checkpoints round-trip, the CLI trains, and the
same entry point runs 2-process DDP (gloo, CPU) under torchrun with replicas that stay identical."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from interrupt import kill_after_first_checkpoint
from mcunet_lite import data, train, zoo
from mcunet_lite.errors import UserError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MCUNET_LITE_CACHE", str(tmp_path / "cache"))


def _bright_vs_dark(n, seed):
    """A task a network must learn in a few steps: is the image brighter than average?"""
    ds = data.synthetic(n, 32, "train" if seed == 0 else "val", 0, progress=False)
    ds.labels = (ds.pixels.mean((1, 2, 3)) > np.median(ds.pixels.mean((1, 2, 3)))).astype(np.int64)
    return ds


def _model():
    torch.manual_seed(0)
    return zoo.get("mbv1", 0.25, 32, num_classes=2).module()


def test_fit_learns_and_repeats_exactly():
    tr, va = _bright_vs_dark(640, 0), _bright_vs_dark(200, 1)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 2))
        hist = train.fit(m, tr, va, epochs=4, seed=1, lr=1e-2, progress=False)
        runs.append((hist, [p.detach().clone() for p in m.parameters()]))
    hist = runs[0][0]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4] and all(h["samples"] == 640 for h in hist)
    assert hist[-1]["val_accuracy"] > 0.8, hist
    assert train.evaluate(m, va)["accuracy"] == pytest.approx(hist[-1]["val_accuracy"])
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))        # same seed, same weights
    assert [h["train_loss"] for h in runs[0][0]] == [h["train_loss"] for h in runs[1][0]]


def test_checkpoint_round_trip(tmp_path):
    tr = _bright_vs_dark(64, 0)
    m = _model()
    meta = {"model": "mbv1", "width": 0.25, "resolution": 32, "num_classes": 2}
    train.fit(m, tr, epochs=1, batch_size=32, checkpoint=tmp_path / "ck.pt", meta=meta, progress=False)
    back, meta2, hist = train.load_checkpoint(tmp_path / "ck.pt")
    x = torch.stack([tr[i][0] for i in range(8)])
    assert meta2 == meta and len(hist) == 1
    assert torch.allclose(m.eval()(x), back(x))
    with pytest.raises(UserError, match="cannot load checkpoint"):
        train.load_checkpoint(tmp_path / "missing.pt")


def test_resume_continues_exactly(tmp_path, monkeypatch):
    """A run killed after epoch 1 and resumed ends with the weights and history of an uninterrupted one;
    a checkpoint of other settings is refused."""
    tr = _bright_vs_dark(96, 0)
    whole = _model()
    full = train.fit(whole, tr, epochs=3, batch_size=32, checkpoint=tmp_path / "a.pt", meta={}, progress=False)
    kill_after_first_checkpoint(monkeypatch, lambda: train.fit(_model(), tr, epochs=3, batch_size=32,
                                                               checkpoint=tmp_path / "b.pt", meta={}, progress=False))
    resumed = _model()
    hist = train.fit(resumed, tr, epochs=3, batch_size=32, checkpoint=tmp_path / "b.pt", meta={}, progress=False,
                     resume=True)
    assert [h["train_loss"] for h in hist] == [h["train_loss"] for h in full]
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
    with pytest.raises(UserError, match="another run"):
        train.fit(_model(), tr, epochs=4, batch_size=32, checkpoint=tmp_path / "b.pt", progress=False, resume=True)


def test_bad_training_arguments():
    with pytest.raises(UserError, match="epochs"):
        train.fit(_model(), _bright_vs_dark(8, 0), epochs=0, progress=False)


def test_device_choice():
    assert train.pick_device("cpu").type == "cpu"
    assert train.pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="unknown device 'tpu'"):
        train.pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="sees no CUDA GPU"):
            train.fit(_model(), _bright_vs_dark(8, 0), epochs=1, progress=False, device="cuda")


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mcunet_lite.cli", *args], capture_output=True, text=True, env=env)


TINY = ["train", "--model", "mbv1", "--width", "0.25", "--resolution", "32", "--n-train", "96", "--n-val", "48",
        "--epochs", "2", "--batch-size", "32", "--json"]


def test_cli_train_writes_a_loadable_checkpoint(tmp_path):
    r = cli(*TINY, "--out", str(tmp_path / "ck.pt"))
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["epoch"] == 2 and rec["world_size"] == 1 and rec["n_train"] == 96 and 0 <= rec["val_accuracy"] <= 1
    assert rec["rule"] == "pyvww" and rec["format"] == "synthetic"
    _, meta, _ = train.load_checkpoint(tmp_path / "ck.pt")
    assert (meta["model"], meta["width"], meta["resolution"]) == ("mbv1", 0.25, 32)
    r = cli("train", "--data", str(tmp_path), "--epochs", "1")
    assert r.returncode == 2 and "holds no Visual Wake Words data" in r.stderr


def test_two_process_ddp_training_keeps_replicas_identical(tmp_path):
    """torchrun, 2 processes, gloo on CPU: the CLI entry point trains a few steps; then each rank fits
    a model it initialised differently and dumps it: DDP must broadcast rank 0's start and average
    the gradients, so both replicas end identical, and different from where they started."""
    ck, script = tmp_path / "ck.pt", tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import torch, torch.distributed as dist
        from mcunet_lite import cli, data, train, zoo
        assert cli.main({TINY!r} + ["--out", {str(ck)!r}]) == 0
        rank = dist.get_rank()
        torch.manual_seed(rank)
        model = zoo.get("mbv1", 0.25, 32, num_classes=2).module()
        init = {{k: v.clone() for k, v in model.state_dict().items()}}
        train.fit(model, data.synthetic(96, 32, "train", 0, progress=False), epochs=1, batch_size=32, progress=False)
        torch.save({{"init": init, "final": model.state_dict()}}, {str(tmp_path)!r} + f"/rank{{rank}}.pt")
    """))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(script)], capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("{")))
    assert rec["world_size"] == 2 and rec["samples"] == 96 and rec["epoch"] == 2
    assert [h["world_size"] for h in train.load_checkpoint(ck)[2]] == [2, 2]
    r0, r1 = (torch.load(tmp_path / f"rank{k}.pt") for k in (0, 1))
    assert any(not torch.equal(r0["init"][k], r1["init"][k]) for k in r0["init"])
    assert all(torch.equal(r0["final"][k], r1["final"][k]) for k in r0["final"])
    assert any(not torch.equal(r0["final"][k], r0["init"][k]) for k in r0["final"] if "weight" in k)


def test_train_redistributed_network_round_trips(tmp_path):
    """`train --redistribute K` trains MobileNetV2's redistributed config, and its checkpoint rebuilds it."""
    from mcunet_lite import redistribute
    out = tmp_path / "rd.pt"
    r = train.train("mbv2", resolution=32, width=0.35, epochs=1, n_train=64, n_val=16, out=out, progress=False,
                    redistribute=2)
    want = redistribute.redistribute(zoo.mobilenet_v2(0.35, 32, 2), 2)[0]
    model, meta, _ = train.load_checkpoint(out)
    assert r["redistribute"] == 2 and meta["config"] == want.to_dict()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in want.module().parameters())
    with pytest.raises(UserError, match="needs an MBConv model"):
        train.train("mbv1", resolution=32, epochs=1, n_train=8, n_val=8, progress=False, redistribute=2)
