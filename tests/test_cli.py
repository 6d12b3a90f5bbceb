"""The `mcunet-lite` command: JSON contract, one-line errors with exit code 2, the demo."""
import json
import subprocess
import sys

import pytest


def cli(*args):
    return subprocess.run([sys.executable, "-m", "mcunet_lite.cli", *args], capture_output=True, text=True)


def test_profile_json_contract():
    r = cli("profile", "mbv2", "--width", "1.0", "--resolution", "224", "--rule", "tinyengine", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for k in ("model", "resolution", "width", "macs", "params", "flash_bytes", "peak_sram_bytes", "rule", "layers"):
        assert k in d
    assert d["peak_sram_bytes"] == 1404928 and d["rule"] == "tinyengine"
    assert set(d["layers"][0]) >= {"name", "op", "in_shape", "out_shape", "macs", "params", "sram_bytes"}
    assert json.loads(cli("profile", "mbv2", "--rule", "naive", "--json").stdout)["peak_sram_bytes"] == 1505280


def test_profile_table():
    r = cli("profile", "mbv1")
    assert r.returncode == 0 and "<- peak" in r.stdout and "peak SRAM" in r.stdout


@pytest.mark.parametrize("args,msg", [
    (("profile", "alexnet"), "valid models: mbv2, mbv1, resnet18, mcunet"),
    (("profile", "mbv2", "--width", "0"), "width must be > 0"),
    (("profile", "mbv2", "--width=-0.5"), "width must be > 0"),
    (("profile", "mbv2", "--resolution", "0"), "resolution must be > 0"),
    (("profile", "mbv2", "--resolution", "20"), "too small for mbv2"),
    (("profile", "mbv2", "--rule", "exact"), "invalid choice"),
])
def test_user_errors_are_one_line_exit_2(args, msg):
    r = cli(*args)
    assert r.returncode == 2
    assert msg in r.stderr and "Traceback" not in r.stderr


def test_demo_writes_report(tmp_path):
    r = cli("demo", "--out", str(tmp_path / "d"), "--mcu-images", "20")
    assert r.returncode == 0, r.stderr
    report = (tmp_path / "d" / "report.md").read_text()
    assert "1372" in report and (tmp_path / "d" / "mbv2_block_memory.png").stat().st_size > 10_000
    assert "vww-classifier" in report and "random weights" not in report
    assert "top-1 computed on the emulated MCU** | **" in report or "emulated MCU was skipped" in report


def test_nas_space_json_picks_the_space_with_most_macs_among_fitting():
    r = cli("nas", "space", "--sram", "96", "--flash", "512", "--samples", "20", "--widths", "0.3", "0.5",
            "--resolutions", "64", "96", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    usable = [s for s in d["spaces"] if s["fit_fraction"] >= 0.05]
    assert len(d["spaces"]) == 4 and d["evaluations_per_second"] > 0
    best = max(usable, key=lambda s: s["mean_macs"])
    assert (d["width"], d["resolution"]) == (best["width"], best["resolution"])


def test_nas_train_supernet_then_search_within_the_limits(tmp_path):
    out = tmp_path / "supernet.pt"
    r = cli("nas", "train-supernet", "--width", "0.2", "--resolution", "32", "--epochs", "2", "--largest-epochs", "1",
            "--n-train", "64", "--n-val", "32", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.exists() and set(json.loads(r.stdout)["val_accuracy"]) == {"largest", "smallest"}
    r = cli("nas", "search", "--supernet", str(out), "--sram", "24", "--flash", "512", "--population", "4",
            "--parents", "2", "--mutations", "2", "--crossovers", "2", "--generations", "1", "--n-train", "64",
            "--n-val", "32", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["sram_bytes"] <= 24 * 1024 and d["config"]["resolution"] == 32 and len(d["best_per_generation"]) == 2
    r = cli("nas", "search", "--supernet", str(tmp_path / "missing.pt"))
    assert r.returncode == 2 and "cannot load supernet" in r.stderr and "Traceback" not in r.stderr
