"""Course assets: every shipped model still delivers its manifest's headline metric on fresh
validation scenes (a fast subsample, tolerance by the binomial standard error); publishing,
verifying and the sha256 check work and can fail; the recipes are the kit's own commands."""
import json
import shlex

import numpy as np
import pytest
import torch

from mcunet_lite import assets, cli, evolution, nas, search_space, train
from mcunet_lite.errors import UserError

FAST_N = {"classifier": 400, "detector": 150, "supernet": 300, "scratch": 300}   # CI subsample of the manifest's scenes


@pytest.mark.parametrize("name", list(assets.RECIPES))
def test_shipped_asset_delivers_its_manifest_metric(name):
    if name not in assets.manifest():
        pytest.skip(f"asset '{name}' is not trained yet (not in {assets.MANIFEST.name}); "
                    f"`mcunet-lite assets verify --retrain {name}` makes it")
    e = assets.entry(name)
    assert assets.sha256(assets.TRAINED / e["file"]) == e["sha256"]
    assert e["data_version"] and e["eval"]["seed"] != e["seed"] and e["command"].startswith("mcunet-lite ")
    rows = assets.verify([name], FAST_N[e["kind"]])   # the asset and each of its repeat runs
    assert [r["seed"] for r in rows] == assets.seeds(name) and all(r["ok"] for r in rows), rows


def test_classifier_meets_the_course_targets():
    if "vww-classifier" not in assets.manifest():
        pytest.skip("asset 'vww-classifier' is not trained yet (not in the manifest)")
    m = assets.entry("vww-classifier")["metrics"]
    assert m["n"] >= 2000 and m["float_top1"] >= 0.85, m
    assert abs(m["int8_top1"] - m["float_top1"]) <= 0.01, m
    assert abs(m["float_top1"] - m["float_top1_float32"]) < assets.FLOAT16_TOLERANCE, m


def test_supernet_and_its_reference_meet_the_course_targets():
    if "nas-scratch" not in assets.manifest():
        pytest.skip("asset 'nas-scratch' is not trained yet (not in the manifest)")
    m = assets.entry("nas-scratch")["metrics"]
    assert m["n"] >= 2000 and len(m["spanning_top1"]) >= 8 and len(m["winner_seeds"]) == len(m["mbv2_seeds"]) == 3
    assert m["kendall_tau"] >= 0.5, m                                       # the supernet ranks the space
    assert all(b > a for a, b in zip(m["spanning_shared_bn"], m["spanning_inherited"])), m  # recalibration helps
    assert m["winner_top1"] - m["mbv2_top1"] >= 0.03, m                      # TinyNAS beats MobileNetV2 scaled


def test_detectors_meet_the_course_targets():
    """MCUNetV2's detection claim at one SRAM budget: the patch-based 256-px detector beats the layer-by-layer
    128-px one by 10 AP@0.5 points or more, and on small objects by more than either resolution's seed spread."""
    if not {"detector-128", "detector-256"} <= set(assets.manifest()):
        pytest.skip("the detectors are not trained yet (not in the manifest)")
    ap = {r: np.array([[m["ap50"], m["ap50_small"]] for m in (assets.run(f"detector-{r}", s)["metrics"]
                                                             for s in assets.seeds(f"detector-{r}"))]) for r in (128, 256)}
    assert len(ap[128]) == len(ap[256]) >= 3, ap
    gap, spread = ap[256].mean(0) - ap[128].mean(0), np.maximum(np.ptp(ap[128], 0), np.ptp(ap[256], 0))
    assert gap[0] >= 0.10 and gap[1] > spread[1], (gap, spread)


@pytest.mark.parametrize("name", list(assets.RECIPES))
def test_recipes_are_kit_commands(name):
    cmd = assets.RECIPES[name].command("x.pt")
    assert cmd[0] == "mcunet-lite"
    a = cli.build_parser().parse_args(cmd[1:])
    assert a.out == "x.pt" and a.resume and a.seed == 0


@pytest.fixture
def private(tmp_path, monkeypatch):
    """A private trained/ folder and data cache."""
    monkeypatch.setenv("MCUNET_LITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(assets, "TRAINED", tmp_path / "trained")
    monkeypatch.setattr(assets, "MANIFEST", tmp_path / "trained" / "manifest.json")
    monkeypatch.setattr(assets, "CALIB_N", 32)
    return tmp_path


@pytest.fixture
def tiny(private, monkeypatch):
    """A 'tiny' classifier recipe (32 px, two short epochs) and its trained checkpoint."""
    tmp_path = private
    recipe = assets.Recipe("classifier", ("train", "--model", "mbv1", "--width", "0.25", "--resolution", "32",
                                          "--epochs", "2", "--n-train", "512", "--n-val", "64", "--seed", "0"), 1000)
    monkeypatch.setitem(assets.RECIPES, "tiny", recipe)
    ck = tmp_path / "tiny.pt"
    cli.main([*recipe.argv, "--out", str(ck), "--json"])
    return ck


def test_publish_then_verify_and_load(tiny, capsys):
    capsys.readouterr()
    e = assets.publish("tiny", tiny)
    assert e["storage"] == "float16" and e["sha256"] == assets.sha256(assets.TRAINED / "tiny.pt")
    assert e["command"] == shlex.join(["mcunet-lite", *assets.RECIPES["tiny"].argv, "--out", "tiny.pt"])
    assert set(e["metrics"]) >= {"float_top1", "int8_top1", "float_top1_float32", "majority"}
    assert e["bytes"] < tiny.stat().st_size / 1.5       # float16, no optimizer state
    model = assets.load("tiny")
    assert next(model.parameters()).dtype == torch.float32 and not model.training
    assert assets.verify(["tiny"], 100)[0]["ok"]
    assert assets.compare("tiny", tiny)["ok"]             # the float32 original measures the same
    assert cli.main(["assets", "verify", "tiny", "--n", "100", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["name"] == "tiny"


def test_verify_fails_when_the_manifest_promises_more(tiny):
    assets.publish("tiny", tiny)
    m = json.loads(assets.MANIFEST.read_text())
    m["assets"]["tiny"]["metrics"]["float_top1"] += 0.1
    assets.MANIFEST.write_text(json.dumps(m))
    row = assets.verify(["tiny"], 200)[0]
    assert not row["ok"] and row["measured"] < row["manifest"] - row["tolerance"]
    with pytest.raises(SystemExit) as stop:
        cli.main(["assets", "verify", "tiny", "--n", "200"])
    assert stop.value.code == 1


def test_repeat_runs_publish_verify_and_survive_a_republish(tiny, capsys):
    assets.publish("tiny", tiny)
    with pytest.raises(UserError, match="trained with seed 0, not 1"):   # seed 0's weights shipped as seed 1
        assets.publish("tiny", tiny, seed=1)
    again = tiny.parent / "tiny-1.pt"
    cli.main([*assets.RECIPES["tiny"].seeded(1).argv, "--out", str(again), "--json"])
    capsys.readouterr()
    assert cli.main(["assets", "publish", "tiny", str(again), "--seed", "1"]) == 0
    r = assets.run("tiny", 1)
    assert r["file"] == "tiny-seed1.pt" and r["sha256"] == assets.sha256(assets.TRAINED / "tiny-seed1.pt")
    assert r["command"].endswith("--seed 1 --out tiny-seed1.pt") and r["metrics"]["n"] == 1000
    assert assets.seeds("tiny") == [0, 1] and assets.run("tiny") == assets.entry("tiny")
    rows = assets.verify(["tiny"], 100)
    assert [(x["seed"], x["ok"]) for x in rows] == [(0, True), (1, True)]
    assert rows[1]["manifest"] == r["metrics"]["float_top1"] != rows[0]["manifest"]
    with pytest.raises(UserError, match="no run with seed 2; its runs: seeds 0, 1"):
        assets.path("tiny", 2)
    assets.publish("tiny", tiny)                                          # the asset again: its repeat run stays
    assert assets.seeds("tiny") == [0, 1]
    f = assets.TRAINED / "tiny-seed1.pt"
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(UserError, match="sha256"):
        assets.verify(["tiny"], 100)


def test_a_classifier_that_stopped_delivering_fails(tmp_path):
    if "vww-classifier" not in assets.manifest():
        pytest.skip("asset 'vww-classifier' is not trained yet (not in the manifest)")
    model, meta, history = train.load_checkpoint(assets.path("vww-classifier"))
    with torch.no_grad():  # the classes swapped: wrong wherever it was right
        model.classifier.weight.copy_(model.classifier.weight.flip(0))
        model.classifier.bias.copy_(model.classifier.bias.flip(0))
    train.save_checkpoint(tmp_path / "swapped.pt", model, meta, history)
    m = assets.measure("vww-classifier", tmp_path / "swapped.pt", n=FAST_N["classifier"])
    row = assets.verify(["vww-classifier"], FAST_N["classifier"])[0]
    assert m["float_top1"] == pytest.approx(1 - row["measured"])
    assert m["float_top1"] < row["manifest"] - row["tolerance"]


def test_damaged_or_missing_assets_are_refused(tiny):
    with pytest.raises(UserError, match="not in manifest.json yet"):
        assets.load("tiny")
    with pytest.raises(UserError, match="unknown asset"):
        assets.load("nope")
    assets.publish("tiny", tiny)
    f = assets.TRAINED / "tiny.pt"
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF
    f.write_bytes(bytes(b))
    with pytest.raises(UserError, match="sha256"):
        assets.load("tiny")


def test_a_detector_publishes_and_verifies(private, monkeypatch):
    recipe = assets.Recipe("detector", ("detect", "train", "--resolution", "64", "--epochs", "1", "--n-train", "32",
                                        "--n-val", "8", "--batch-size", "16", "--seed", "0"), 40)
    monkeypatch.setitem(assets.RECIPES, "tiny-detector", recipe)
    cli.main([*recipe.argv, "--out", str(private / "d.pt"), "--json"])
    e = assets.publish("tiny-detector", private / "d.pt")
    assert e["model"]["resolution"] == 64 and e["metrics"]["boxes"] > 0 and e["storage"] == "float16"
    assert set(e["metrics"]) >= {"ap50", "ap50_small", "ap50_float32"}
    model, cfg, _ = assets.detector("tiny-detector")
    assert cfg.resolution == 64 and not model.training
    assert assets.resolve("tiny-detector") == str(assets.TRAINED / "tiny-detector.pt")
    assert assets.verify(["tiny-detector"], 20)[0]["ok"]


def test_retrain_reproduces_an_asset(tiny, capsys):
    assets.publish("tiny", tiny)
    capsys.readouterr()
    assert cli.main(["assets", "verify", "--retrain", "tiny", "--work", str(tiny.parent / "again"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[-1])[0]
    assert row["ok"] and row["measured"] == pytest.approx(row["manifest"], abs=0.002), row


def test_a_supernet_publishes_and_is_searched_by_default(private, monkeypatch, capsys):
    recipe = assets.Recipe("supernet", ("nas", "train-supernet", "--width", "0.2", "--resolution", "32", "--epochs",
                                        "1", "--n-train", "64", "--n-val", "16", "--batch-size", "32", "--seed", "0"), 64)
    monkeypatch.setitem(assets.RECIPES, "supernet", recipe)
    cli.main([*recipe.argv, "--out", str(private / "s.pt")])
    e = assets.publish("supernet", private / "s.pt")
    assert e["model"] == {"model": "supernet", "width": 0.2, "resolution": 32} and e["train_seconds"] > 0
    assert set(e["metrics"]) >= {"largest_top1", "smallest_top1", "largest_top1_float32"}
    assert assets.verify(["supernet"], 32)[0]["ok"]
    capsys.readouterr()
    assert cli.main(["nas", "search", "--sram", "320", "--flash", "1024", "--population", "4", "--parents", "2",
                     "--mutations", "2", "--crossovers", "2", "--generations", "1", "--n-train", "64", "--n-val", "16",
                     "--json"]) == 0
    out = capsys.readouterr()
    assert "searching the shipped supernet (space width 0.2, resolution 32" in out.err
    assert json.loads(out.out)["config"]["resolution"] == 32


def test_a_from_scratch_reference_trains_resumes_publishes_and_verifies(private, monkeypatch, capsys):
    sn_recipe = assets.Recipe("supernet", ("nas", "train-supernet", "--width", "0.2", "--resolution", "32", "--epochs",
                                           "1", "--n-train", "64", "--n-val", "16", "--batch-size", "32", "--seed",
                                           "0"), 64)
    monkeypatch.setitem(assets.RECIPES, "tiny-supernet", sn_recipe)
    cli.main([*sn_recipe.argv, "--out", str(private / "s.pt")])
    assets.publish("tiny-supernet", private / "s.pt")
    recipe = assets.Recipe("scratch", ("nas", "scratch", "--width", "0.2", "--resolution", "32", "--supernet",
                                       "tiny-supernet", "--sram", "320", "--flash", "1024", "--spanning", "3", "--seeds",
                                       "0", "1", "--epochs", "1", "--n-train", "64", "--population", "4", "--parents",
                                       "2", "--generations", "1", "--n-search-val", "16", "--seed", "0"), 64)
    monkeypatch.setitem(assets.RECIPES, "tiny-scratch", recipe)
    out = private / "scratch.pt"
    real_train, calls = nas.train_from_scratch, []

    def interrupted_after_four(*args):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(args)
        return real_train(*args)

    monkeypatch.setattr(nas, "train_from_scratch", interrupted_after_four)
    with pytest.raises(KeyboardInterrupt):    # interrupted after 4 of the 9 runs
        cli.main([*recipe.argv, "--out", str(out)])
    assert len(torch.load(out, weights_only=True)["runs"]) == 4
    calls.clear()
    monkeypatch.setattr(nas, "train_from_scratch", lambda *args: calls.append(args) or real_train(*args))
    cli.main([*recipe.argv, "--out", str(out), "--resume"])
    assert len(calls) == 5                    # only the runs the file did not hold
    info, runs = nas.load_scratch(out)
    assert [(r, s) for r, _, s, _ in runs] == [("spanning-0", 0), ("spanning-1", 0), ("spanning-2", 0),
                                                ("mbv2", 0), ("mbv2", 1), ("random", 0), ("random", 1),
                                                ("winner", 0), ("winner", 1)]
    macs = [search_space.cost(c).macs for r, c, _, _ in runs[:3]]
    assert macs == sorted(macs) and macs[0] < macs[-1]
    assert runs[7][1].to_dict() == info["winner"]["config"] == runs[8][1].to_dict()
    assert runs[3][1].to_dict() == nas.scaled_mbv2(evolution.Limits(320 * 1024, 1024 * 1024)).to_dict()
    capsys.readouterr()
    assert cli.main([*recipe.argv[:-2], "--seed", "1", "--out", str(out), "--resume"]) == 2
    assert "was made with other settings" in capsys.readouterr().err
    e = assets.publish("tiny-scratch", out)
    m = e["metrics"]
    assert len(m["winner_seeds"]) == len(m["mbv2_seeds"]) == len(m["random_seeds"]) == 2
    assert len(m["spanning_top1"]) == 3 and runs[5][1].to_dict() != runs[6][1].to_dict()
    assert m["winner_top1"] == pytest.approx(sum(m["winner_seeds"]) / 2)
    assert len(m["spanning_inherited"]) == len(m["spanning_shared_bn"]) == 3 and -1 <= m["kendall_tau"] <= 1
    assert e["storage"] == "float16" and len(e["model"]["runs"]) == 9 and e["train_seconds"] > 0
    info, runs = assets.load("tiny-scratch")
    assert next(runs[0][3].parameters()).dtype == torch.float32 and not runs[0][3].training
    assert assets.verify(["tiny-scratch"], 32)[0]["ok"]
