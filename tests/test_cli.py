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
    r = cli("demo", "--out", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    report = (tmp_path / "d" / "report.md").read_text()
    assert "1372" in report and (tmp_path / "d" / "mbv2_block_memory.png").stat().st_size > 10_000
