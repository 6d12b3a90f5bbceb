"""Course assets: trained models that ship inside the package, so the labs and the demo show what a
trained network does without training it first.

Each asset is a file in `mcunet_lite/trained/` in the kit's own checkpoint format (readable by
`train.load_checkpoint`, `detect.load`, `nas.load_supernet` or `nas.load_scratch`), with its float tensors stored as
float16 where that changes the headline metric by less than `FLOAT16_TOLERANCE`. Its entry in
`trained/manifest.json` says how it was made (the `mcunet-lite` command and seed, the synthetic
data generator's version), its sha256, how long it trained, and the metrics it was measured at on
validation scenes of another seed than the training run's. An asset may also ship repeat runs:
the same recipe trained with other seeds (the entry's "seeds"), so that a lesson comparing two
assets can show the spread one training run hides. `verify` measures the headline metric of each
file again and compares; `retrain` reproduces an asset with its recorded command.
"""
from __future__ import annotations

import hashlib
import json
import math
import shlex
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError
from .safeio import write_atomic

TRAINED = Path(__file__).parent / "trained"
MANIFEST = TRAINED / "manifest.json"
EVAL_SEED = 1               # validation stream of every measurement; training runs use seed 0
FLOAT16_TOLERANCE = 0.002   # largest change of the headline metric float16 storage may cause
CALIB_N = 256               # int8 calibration images (training split)


@dataclass(frozen=True)
class Recipe:
    """How an asset is made: the kind of model and the `mcunet-lite` arguments (without `--out`)."""

    kind: str                 # "classifier", "detector", "supernet" or "scratch" (subnets trained from scratch)
    argv: tuple[str, ...]
    n_eval: int               # validation scenes of the manifest's metrics

    def command(self, out: str | Path) -> list[str]:
        """The command line that trains this asset into `out` (resuming where an earlier run stopped)."""
        return ["mcunet-lite", *self.argv, "--out", str(out), "--resume"]

    def option(self, name: str, default: str | None = None) -> str | None:
        """The value of `--name` in the recipe's arguments."""
        flag = f"--{name}"
        return self.argv[self.argv.index(flag) + 1] if flag in self.argv else default

    def seeded(self, seed: int) -> Recipe:
        """The same recipe with `--seed seed`: a repeat run, whose spread says how much of a result is luck."""
        i = self.argv.index("--seed") + 1
        return replace(self, argv=(*self.argv[:i], str(seed), *self.argv[i + 1:]))


RECIPES: dict[str, Recipe] = {
    "vww-classifier": Recipe("classifier", (
        "train", "--model", "mbv2", "--width", "0.35", "--resolution", "128", "--epochs", "12",
        "--n-train", "16000", "--n-val", "1000", "--seed", "0"), n_eval=2000),
    "vww-classifier-rd": Recipe("classifier", (   # Lab 03: the same network, receptive field redistributed
        "train", "--model", "mbv2", "--width", "0.35", "--resolution", "128", "--redistribute", "4", "--epochs",
        "12", "--n-train", "16000", "--n-val", "1000", "--seed", "0"), n_eval=2000),
    "detector-128": Recipe("detector", (
        "detect", "train", "--data", "synthetic-crowd", "--resolution", "128", "--epochs", "10",
        "--n-train", "4000", "--n-val", "1000", "--seed", "0"), n_eval=1000),
    "detector-256": Recipe("detector", (
        "detect", "train", "--data", "synthetic-crowd", "--resolution", "256", "--epochs", "10",
        "--n-train", "4000", "--n-val", "1000", "--seed", "0"), n_eval=1000),
    "supernet": Recipe("supernet", (
        "nas", "train-supernet", "--width", "0.35", "--resolution", "80", "--epochs", "8", "--largest-epochs", "2",
        "--n-train", "16000", "--n-val", "1000", "--seed", "0"), n_eval=1000),
    "nas-scratch": Recipe("scratch", (   # Lab 05: the supernet's ranking and the search's winner, from scratch
        "nas", "scratch", "--width", "0.35", "--resolution", "80", "--supernet", "supernet", "--sram", "64",
        "--flash", "256", "--spanning", "8", "--seeds", "0", "1", "2", "--epochs", "3", "--n-train", "16000",
        "--batch-size", "32", "--seed", "0"), n_eval=2000),
}
HEADLINE = {"classifier": "float_top1", "detector": "ap50", "supernet": "largest_top1", "scratch": "winner_top1"}


# ------------------------------------------------------------------------------ manifest and files
def manifest() -> dict[str, dict[str, Any]]:
    """The manifest's entries by asset name (empty before any asset is published)."""
    return json.loads(MANIFEST.read_text())["assets"] if MANIFEST.exists() else {}


def listing() -> list[dict[str, Any]]:
    """Every asset: name, kind, whether it is trained, and its manifest entry (or the command that makes it)."""
    entries = manifest()
    return [{"name": n, "kind": r.kind, "trained": n in entries,
             **entries.get(n, {"command": shlex.join(r.command(f"{n}.pt")[:-1])})} for n, r in RECIPES.items()]


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise UserError(f"unknown asset '{name}'; assets: {', '.join(RECIPES)}")
    return RECIPES[name]


def entry(name: str) -> dict[str, Any]:
    """The manifest entry of a published asset; a clear error for one not trained yet."""
    _recipe(name)
    entries = manifest()
    if name not in entries:
        raise UserError(f"asset '{name}' is not in {MANIFEST.name} yet (not trained): `mcunet-lite assets verify "
                        f"--retrain {name}` trains it, `mcunet-lite assets publish {name} CHECKPOINT` ships it")
    return entries[name]


def seeds(name: str) -> list[int]:
    """The training seeds a published asset ships runs of: its own first, then its repeat runs'."""
    e = entry(name)
    return [e["seed"], *(r["seed"] for r in e.get("seeds", []))]


def run(name: str, seed: int | None = None) -> dict[str, Any]:
    """The manifest record of an asset's run with `seed` (default: the asset itself): its file,
    command, sha256 and metrics; a clear error for a seed that was not published."""
    e = entry(name)
    if seed is None or seed == e["seed"]:
        return e
    for r in e.get("seeds", []):
        if r["seed"] == seed:
            return r
    raise UserError(f"asset '{name}' has no run with seed {seed}; its runs: seeds {', '.join(map(str, seeds(name)))} "
                    f"(`mcunet-lite assets publish {name} CHECKPOINT --seed {seed}` ships one)")


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def path(name: str, seed: int | None = None) -> Path:
    """The file of the asset (or of its run with `seed`), checked against the manifest's sha256 (a
    damaged file is an error)."""
    e = run(name, seed)
    p = TRAINED / e["file"]
    if not p.exists() or sha256(p) != e["sha256"]:
        raise UserError(f"asset file {p} is missing or differs from the manifest's sha256; reinstall the kit "
                        f"or rebuild it with `mcunet-lite assets verify --retrain {name}`")
    return p


def load(name: str):
    """The asset's torch module in eval mode, float32 (a classifier, a detector or a supernet); for a
    from-scratch reference, its info and runs (`nas.load_scratch`)."""
    return _load(_recipe(name).kind, path(name))[0]


def detector(name: str, seed: int | None = None):
    """(model, config, metadata) of a detector asset (or of its run with `seed`), as `detect.load` returns them."""
    if _recipe(name).kind != "detector":
        raise UserError(f"asset '{name}' is a {_recipe(name).kind}, not a detector")
    return _load("detector", path(name, seed))


def resolve(model: str) -> str:
    """A checkpoint argument of the CLI: an asset name becomes its shipped file, anything else stays."""
    return str(path(model)) if model in RECIPES and not Path(model).exists() else model


def _load(kind: str, checkpoint: Path):
    """(module, ...) from a checkpoint file of `kind`, whatever its float precision."""
    if kind == "classifier":
        from .train import load_checkpoint
        model, meta, _ = load_checkpoint(checkpoint)
        return model.float().eval(), meta
    if kind == "supernet":
        from . import nas
        return (nas.load_supernet(checkpoint).float().eval(),)
    if kind == "scratch":
        from . import nas
        return (nas.load_scratch(checkpoint),)
    from . import detect
    model, cfg, meta = detect.load(checkpoint)
    return model.float().eval(), cfg, meta


def compact(checkpoint: str | Path, out: str | Path) -> None:
    """Write `checkpoint` without its training state, float tensors as float16 (integers unchanged)."""
    import torch
    ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if "model" in ck:   # train / detect checkpoints; "state" is the training state
        ck.pop("state", None)
    key = "state" if "width" in ck else "model"   # nas.save_supernet keeps the weights in "state"
    for holder in ck["runs"] if "runs" in ck else [ck]:   # nas.save_scratch: one state per run
        holder[key] = {k: v.half() if v.is_floating_point() else v for k, v in holder[key].items()}
    write_atomic(out, lambda tmp: torch.save(ck, tmp))


# ------------------------------------------------------------------------------ measurements
def _classifier_data(meta: dict[str, Any], n: int, split: str = "val", seed: int = EVAL_SEED):
    from . import data
    return data.synthetic(n, meta["resolution"], split, seed, progress=False)


def measure(name: str, checkpoint: str | Path | None = None, n: int | None = None,
            full: bool = False) -> dict[str, Any]:
    """Metrics of an asset (or of another `checkpoint` made by its recipe) on the first `n` scenes of
    the validation stream `EVAL_SEED`: the headline metric, and with `full` the rest the manifest
    records (int8 top-1 of a classifier, small-object AP of a detector)."""
    recipe = _recipe(name)
    n = n or recipe.n_eval
    loaded = _load(recipe.kind, Path(checkpoint) if checkpoint else path(name))
    if recipe.kind == "classifier":
        return _measure_classifier(*loaded, n, full)
    if recipe.kind == "supernet":
        return _measure_supernet(*loaded, n)
    if recipe.kind == "scratch":
        return _measure_scratch(*loaded[0], n, full, recipe.option("supernet", "supernet"))
    return _measure_detector(*loaded, recipe, n)


def _measure_classifier(model, meta: dict[str, Any], n: int, full: bool) -> dict[str, Any]:
    """Float top-1 (torch), and with `full` int8 top-1 (int8ref, bit-exact with TFLite Micro)."""
    from . import train
    val = _classifier_data(meta, n)
    r = {"n": n, "float_top1": train.evaluate(model, val)["accuracy"],
         "majority": float(max(np.mean(val.labels), 1 - np.mean(val.labels)))}
    if full:
        r.update(int8_top1=int8_accuracy(model, meta, val)["int8_accuracy"])
    return r


def int8_accuracy(model, meta: dict[str, Any], val) -> dict[str, float]:
    """Post-training int8 (min/max calibration on `CALIB_N` training images) vs float, on `val`."""
    from . import data, quant
    calib = data.to_tensor(_classifier_data(meta, CALIB_N, "train", 0).arrays()[0]).permute(0, 2, 3, 1).numpy()
    g, q = quant.from_module(model, meta["resolution"], calib, meta["model"])
    x, y = val.arrays()
    return quant.float_vs_int8(g, q, data.to_tensor(x).permute(0, 2, 3, 1).numpy(), y)


def _supernet_data(resolution: int, n: int):
    """(calibration images, validation images, labels) as tensors: `CALIB_N` training images of
    seed 0 for BatchNorm recalibration, the first `n` validation scenes of `EVAL_SEED`."""
    import torch

    from . import data
    calib = data.to_tensor(data.synthetic(CALIB_N, resolution, "train", 0, progress=False).arrays()[0])
    vx, vy = data.synthetic(n, resolution, "val", EVAL_SEED, progress=False).arrays()
    return calib, data.to_tensor(vx), torch.as_tensor(vy)


def _measure_supernet(net, n: int) -> dict[str, Any]:
    """Inherited top-1 of the largest and the smallest subnet, each after BatchNorm recalibration on
    `CALIB_N` training images (the accuracy the evolution's fitness reads)."""
    from . import supernet
    w, r = net.space.width, net.space.resolution
    d = _supernet_data(r, n)
    return {"n": n, **{f"{k}_top1": supernet.accuracy(net, cfg(w, r), *d)
                       for k, cfg in (("largest", supernet.largest), ("smallest", supernet.smallest))}}


def _measure_scratch(info: dict[str, Any], runs: list, n: int, full: bool, supernet_asset: str) -> dict[str, Any]:
    """Top-1 of every network of a from-scratch reference on `n` fresh validation scenes: the
    searched winner's, scaled MobileNetV2's and the random subnets' means over seeds (the headline
    is the winner's), and with `full`, for the subnets spanning the space, the supernet asset's inherited
    accuracies with its shared and with recalibrated BatchNorm statistics and Kendall's tau
    between the recalibrated ones and the from-scratch ones (MCUNet 3.1, OFA 3.2)."""
    from torch.utils.data import TensorDataset

    from . import predictor, supernet, train
    sets = {}
    accs: dict[str, list[float]] = {}
    for role, cfg, _, model in runs:
        if cfg.resolution not in sets:
            sets[cfg.resolution] = _supernet_data(cfg.resolution, n)
        _, vx, vy = sets[cfg.resolution]
        accs.setdefault(role.split("-")[0], []).append(train.evaluate(model, TensorDataset(vx, vy))["accuracy"])
    mean = lambda v: float(np.mean(v))  # noqa: E731
    r = {"n": n, **{f"{k}_top1": mean(accs[k]) for k in ("winner", "mbv2", "random")},
         **{f"{k}_seeds": accs[k] for k in ("winner", "mbv2", "random")}, "spanning_top1": accs["spanning"],
         "majority": float(max(vy.float().mean(), 1 - vy.float().mean()))}
    if full:
        net = load(supernet_asset)
        calib, vx, vy = sets[net.space.resolution]
        span = [cfg for role, cfg, _, _ in runs if role.startswith("spanning")]
        r["spanning_shared_bn"] = [supernet.accuracy(net, cfg, None, vx, vy) for cfg in span]  # before any recalibration
        r["spanning_inherited"] = [supernet.accuracy(net, cfg, calib, vx, vy) for cfg in span]
        r["kendall_tau"] = predictor.kendall_tau(r["spanning_inherited"], r["spanning_top1"])
    return r


def _measure_detector(model, cfg, meta: dict[str, Any], recipe: Recipe, n: int) -> dict[str, Any]:
    """AP@0.5 overall and on small objects on `n` fresh validation scenes."""
    from . import detdata, detect
    ds = detdata.load(recipe.option("data", "synthetic"), "val", cfg.resolution, None, n, EVAL_SEED,
                      meta.get("difficulty", 0.5), progress=False)
    ap = detect.evaluate(model, cfg, ds)
    return {"n": n, "ap50": ap["map"], "ap50_small": ap["map_small"], "boxes": _boxes(ds)}


def _boxes(ds) -> int:
    """Ground-truth boxes in a detection set, ignored ones left out (the sample size behind its AP)."""
    return sum(ds.counts().values())


def tolerance(value: float, n: int, n_ref: int) -> float:
    """How far a metric measured on the first `n` of the `n_ref` scenes the manifest used may differ
    from the manifest's value by chance: 3 binomial standard errors of a proportion near `value`
    for a subsample (finite-population corrected), plus half a point for arithmetic differences."""
    se = math.sqrt(max(value * (1 - value), 0.01) / n * max(1 - n / n_ref, 0.0))  # n_ref = inf: independent
    return 3 * se + 0.005


def _row(name: str, seed: int, measured: dict[str, Any], subsample: bool) -> dict[str, Any]:
    """Measured headline metric of the asset's run with `seed` next to the manifest's, with the tolerance
    chance allows: for a subsample of the manifest's scenes (`verify`), or for the same scenes measured
    on another trained copy."""
    e, ref_metrics = entry(name), run(name, seed)["metrics"]
    key = HEADLINE[e["kind"]]
    ref = ref_metrics[key]
    detector = e["kind"] == "detector"
    size, size_ref = (measured["boxes"], ref_metrics["boxes"]) if detector else (measured["n"], e["eval"]["n"])
    tol = tolerance(ref, size, size_ref if subsample else math.inf)
    return {"name": name, "seed": seed, "metric": key, "n": measured["n"], "measured": measured[key],
            "manifest": ref, "tolerance": tol, "ok": abs(measured[key] - ref) <= tol}


def verify(names: list[str] | None = None, n: int | None = None) -> list[dict[str, Any]]:
    """Re-measure the headline metric of every published asset (or `names`), each of its runs, on the
    first `n` scenes of the manifest's validation stream (default: all it used) and compare with the manifest."""
    rows = []
    for name in names or [k for k in RECIPES if k in manifest()]:
        n_name = min(n or entry(name)["eval"]["n"], entry(name)["eval"]["n"])
        rows += [_row(name, s, measure(name, path(name, s), n_name), True) for s in seeds(name)]
    return rows


def compare(name: str, checkpoint: str | Path) -> dict[str, Any]:
    """A retrained copy of a published asset against the manifest, on the manifest's validation scenes."""
    return _row(name, entry(name)["seed"], measure(name, checkpoint, n=entry(name)["eval"]["n"]), False)


# ------------------------------------------------------------------------------ making assets
def retrain(name: str, work: str | Path) -> Path:
    """Run the asset's recorded command into `work` (resuming an interrupted run); the checkpoint."""
    recipe = _recipe(name)
    out = Path(work) / f"{name}.pt"
    cmd = [sys.executable, "-m", "mcunet_lite.cli", *recipe.command(out)[1:]]
    if subprocess.run(cmd, check=False).returncode != 0:
        raise UserError(f"retraining '{name}' failed: {shlex.join(cmd)}")
    return out


def _trained_seed(checkpoint: Path) -> int | None:
    """The seed a classifier or detector checkpoint records it was trained with (None for other kinds)."""
    import torch
    meta = torch.load(checkpoint, map_location="cpu", weights_only=True).get("meta", {})
    return meta.get("seed") if isinstance(meta, dict) else None


def _train_seconds(kind: str, checkpoint: Path) -> float:
    """Training time recorded in a checkpoint (per-epoch seconds summed over every session)."""
    import torch
    ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if kind == "detector":
        return float(ck["meta"]["train_seconds"])
    return float(sum(h["seconds"] for h in ck["runs" if kind == "scratch" else "history"]))


def _architecture(kind: str, checkpoint: Path) -> dict[str, Any]:
    """What network a checkpoint holds: zoo model (or backbone), width and input resolution."""
    loaded = _load(kind, checkpoint)
    if kind == "classifier":
        return {k: loaded[1][k] for k in ("model", "width", "resolution", "redistribute") if k in loaded[1]}
    if kind == "supernet":
        return {"model": "supernet", "width": loaded[0].space.width, "resolution": loaded[0].space.resolution}
    if kind == "scratch":
        info, runs = loaded[0]
        return {"model": "subnets trained from scratch", "width": info["space"][0], "resolution": info["space"][1],
                "runs": [f"{role} seed {seed}" for role, _, seed, _ in runs], "winner": info["winner"]}
    cfg = loaded[1]
    return {"model": f"detector ({cfg.backbone['model']} backbone)", "width": cfg.backbone["width"],
            "resolution": cfg.resolution}


def _ship(name: str, recipe: Recipe, checkpoint: Path, file: Path) -> dict[str, Any]:
    """Store `checkpoint` (trained by `recipe`) compactly as `file` and measure it: float16 unless that
    moves the headline metric by `FLOAT16_TOLERANCE` or more. The run's manifest record."""
    from . import scenes
    seed, trained = int(recipe.option("seed", "0")), _trained_seed(checkpoint)
    if trained is not None and trained != seed:
        raise UserError(f"{checkpoint} was trained with seed {trained}, not {seed}: publish it with --seed {trained}")
    compact(checkpoint, file)
    metrics = measure(name, file, full=True)
    exact = measure(name, checkpoint)
    key = HEADLINE[recipe.kind]
    if abs(metrics[key] - exact[key]) >= FLOAT16_TOLERANCE:
        file.write_bytes(checkpoint.read_bytes())  # float16 is not exact enough: keep float32
        metrics, storage = measure(name, file, full=True), "float32"
    else:
        storage = "float16"
    metrics[f"{key}_float32"] = exact[key]
    return {"file": file.name, "command": shlex.join(recipe.command(file.name)[:-1]), "seed": seed,
            "data_version": scenes.VERSION, "storage": storage, "sha256": sha256(file), "bytes": file.stat().st_size,
            "train_seconds": round(_train_seconds(recipe.kind, checkpoint), 1), "metrics": metrics}


def publish(name: str, checkpoint: str | Path, seed: int | None = None) -> dict[str, Any]:
    """Make `checkpoint` (trained by the asset's recipe) the shipped asset and write its manifest entry;
    with a `seed` other than the recipe's, ship it as a repeat run of the published asset (the recipe
    with `--seed seed`), recorded in the entry's "seeds". Republishing the asset keeps the repeat runs
    made by its recipe and data version and drops the others (they would measure another recipe)."""
    from . import detdata
    recipe = _recipe(name)
    entries = manifest()
    TRAINED.mkdir(exist_ok=True)
    if seed is not None and seed != int(recipe.option("seed", "0")):
        e = entry(name)
        r = _ship(name, recipe.seeded(seed), Path(checkpoint), TRAINED / f"{name}-seed{seed}.pt")
        e["seeds"] = sorted([x for x in e.get("seeds", []) if x["seed"] != seed] + [r], key=lambda x: x["seed"])
    else:
        r = _ship(name, recipe, Path(checkpoint), TRAINED / f"{name}.pt")
        e = {"kind": recipe.kind, "model": _architecture(recipe.kind, TRAINED / r["file"]), **r,
             "eval": {"split": "val", "seed": EVAL_SEED, "n": r["metrics"]["n"]}, "headline": HEADLINE[recipe.kind]}
        if recipe.kind == "detector":
            e["boxes_version"] = detdata.BOXES_VERSION
        repeats = [x for x in entries.get(name, {}).get("seeds", []) if x["data_version"] == r["data_version"]
                   and x["command"] == shlex.join(recipe.seeded(x["seed"]).command(x["file"])[:-1])]
        if repeats:
            e["seeds"] = repeats
    entries[name] = e
    MANIFEST.write_text(json.dumps({"assets": dict(sorted(entries.items()))}, indent=1) + "\n")
    return e
