"""What each `mcunet-lite` subcommand does: one `cmd_*` function per subcommand (`cli` parses the
arguments and registers them). User mistakes raise `UserError`, which `cli.main` prints as one line.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import profile as prof
from . import zoo
from .errors import UserError
from .ir import Graph
from .validate import LIMIT_MIB


def load_graph(model: str, width: float | None = None, resolution: int | None = None,
               config: str | None = None, num_classes: int | None = None, size_limit: float = LIMIT_MIB) -> Graph:
    """MODEL argument -> Graph: a zoo name (with width / resolution / config) or a .tflite path
    (validated; `size_limit` MiB caps the file and its activations)."""
    if model.endswith(".tflite"):
        from . import tflite_io
        return tflite_io.read(model, size_limit)
    return zoo.get(model, width, resolution, num_classes, config).graph()


def load_input(path: str, g: Graph, size_limit: float):
    """A .npy batch for `g`'s input: its header checked before loading, its dtype and shape the
    model's, and the batch's activations within `size_limit` MiB."""
    from .safeio import load_npy
    from .validate import run_bytes
    xs = load_npy(path, size_limit)
    t = g.tensors[g.inputs[0]]
    if str(xs.dtype) != t.dtype or tuple(xs.shape[1:]) != tuple(t.shape[1:]):
        raise UserError(f"input '{path}' must be {t.dtype} of shape (N, {', '.join(map(str, t.shape[1:]))}), "
                        f"got {xs.dtype} {xs.shape}")
    if len(xs) * run_bytes(g) > size_limit * 2 ** 20:
        raise UserError(f"input '{path}': running {len(xs)} samples takes {len(xs) * run_bytes(g) / 2 ** 20:.1f} MiB, "
                        f"over the {size_limit:g} MiB limit; pass fewer samples or --size-limit MIB")
    return xs


def cmd_profile(a: argparse.Namespace) -> None:
    """Print MACs, params, Flash and per-op SRAM of a model, as a table or JSON."""
    p = prof.profile(load_graph(a.model, a.width, a.resolution, a.config, a.num_classes, a.size_limit), a.rule)
    print(json.dumps(p.to_dict()) if a.json else prof.format_table(p))


def cmd_schedule(a: argparse.Namespace) -> None:
    """Plan the activation arena of a model and check the plan; table or JSON."""
    from . import schedule
    plan = schedule.plan(load_graph(a.model, a.width, a.resolution, a.config, a.num_classes, a.size_limit), a.allocator,
                         inplace=not a.no_inplace)
    schedule.check(plan)
    if a.json:
        print(json.dumps(plan.to_dict()))
        return
    print(f"{'tensor':36s} {'offset':>9s} {'bytes':>9s} {'ops':>9s}")
    for t in plan.tensors.values():
        print(f"{t.name:36s} {t.offset:9d} {t.size:9d} {t.first_op:4d}..{t.last_op:<4d}")
    print(f"arena {plan.arena_bytes} bytes ({plan.arena_bytes / 1024:.1f} kB), lower bound {plan.lower_bound_bytes}, "
          f"allocator {plan.allocator}, in-place {'on' if plan.inplace else 'off'} ({len(plan.pairs)} pairs); "
          f"kernel scratch {plan.extra_buffers_bytes} bytes; Flash {plan.flash_bytes} bytes; checker: no overlap")


def cmd_quantize(a: argparse.Namespace) -> None:
    """Post-training int8 quantization of a zoo model (random init or a checkpoint) -> .tflite."""
    import torch

    from . import quant, safeio, tflite_io
    safeio.refuse_existing(a.out, a.force)
    if a.checkpoint:
        from .train import load_checkpoint
        module, meta, _ = load_checkpoint(a.checkpoint)
        if meta["model"] != a.model:
            raise UserError(f"checkpoint '{a.checkpoint}' holds a '{meta['model']}' model, not '{a.model}'")
        resolution, weights = meta["resolution"], a.checkpoint
    else:
        cfg = zoo.get(a.model, a.width, a.resolution, a.num_classes, a.config)
        torch.manual_seed(0)
        module, resolution, weights = cfg.module(), cfg.resolution, "random init (seed 0; pass --checkpoint)"
    images = quant.calibration_images(a.calib, a.calib_n, resolution)
    g, q = quant.from_module(module, resolution, images, a.model, a.percentile,
                             None if a.calib.endswith(".npy") else quant.IMAGE_QUANT, a.float_io)
    out = tflite_io.write(q, a.out)
    agree = quant.float_vs_int8(g, q, images)
    t = q.tensors[q.inputs[0]]
    report = {"model": a.model, "resolution": resolution, "weights": weights, "out": str(out),
              "bytes": out.stat().st_size, "ops": len(q.ops), "input": {"dtype": t.dtype, "shape": list(t.shape)},
              "calibration": {"source": a.calib, "n": len(images), "percentile": a.percentile},
              "float_vs_int8_on_calibration_images": agree}
    if t.quant is not None:
        report["input"].update(scale=float(t.quant.scale[0]), zero_point=int(t.quant.zero_point[0]))
    if a.json:
        print(json.dumps(report))
        return
    print(f"wrote {out} ({report['bytes']} bytes, {len(q.ops)} ops); weights: {weights}")
    print(f"input {t.dtype} {list(t.shape)}" + (f" scale {report['input']['scale']:.6g} zero point "
          f"{report['input']['zero_point']}" if t.quant is not None else ""))
    print(f"calibration: {len(images)} images from {a.calib}" + (f", percentile {a.percentile}" if a.percentile else
          ", min/max") + f"; float vs int8 top-1 agreement {agree['top1_agreement']:.3f}, "
          f"max |output difference| {agree['max_abs_diff']:.4g}")


def cmd_run(a: argparse.Namespace) -> None:
    """Execute a .tflite model with the int8 reference executor on a .npy input."""
    from . import int8ref, safeio, tflite_io
    g = tflite_io.read(a.model, a.size_limit)
    safeio.output_file(a.output, [a.model, a.input], (".npy", ".npz"), a.force)  # before the run, not after
    ys = int8ref.run_all(g, load_input(a.input, g, a.size_limit))
    out = safeio.save_arrays(a.output, ys, [a.model, a.input], a.force)
    print(f"wrote {out}: " + ", ".join(f"{y.dtype} {list(y.shape)}" for y in ys))


def cmd_patch(a: argparse.Namespace) -> None:
    """Plan MCUNetV2 patch-based inference: peak SRAM and MACs against layer-by-layer."""
    from . import patch
    g = load_graph(a.model, a.width, a.resolution, a.config, a.num_classes, a.size_limit)
    if a.auto_split:
        if a.sram_budget is None:
            raise UserError("--auto-split needs --sram-budget KB")
        grids = (a.grid,) if a.grid else (2, 3, 4, 5, 6, 7, 8)
        p = patch.auto_plan(g, int(a.sram_budget * 1024), grids, uniform=not a.trimmed)
    else:
        if a.grid is None or (a.split_block is None) == (a.split_op is None):
            raise UserError("give --grid N and one of --split-block K, --split-op I (or --auto-split --sram-budget KB)")
        split = patch.split_after_block(g, a.split_block) if a.split_block is not None else a.split_op
        p = patch.plan(g, split, a.grid, uniform=not a.trimmed)
    d = p.to_dict()
    if a.json:
        print(json.dumps(d))
        return
    print(f"{d['model']}: patch stage = ops 0..{d['split_op']} (through {d['split_op_name']}), "
          f"{d['grid']}x{d['grid']} patches of the {'x'.join(map(str, d['stage_output_shape'][1:]))} stage output")
    print(f"  input patch {d['input_patch'][0]}x{d['input_patch'][1]}, receptive field {d['receptive_field']} px")
    print(f"  peak SRAM {d['peak_sram_bytes'] / 1024:.1f} kB (patch stage {d['patch_stage_peak_bytes'] / 1024:.1f} kB, "
          f"rest {d['rest_peak_bytes'] / 1024:.1f} kB) vs layer by layer {d['layerwise_peak_sram_bytes'] / 1024:.1f} kB: "
          f"{d['layerwise_peak_sram_bytes'] / d['peak_sram_bytes']:.1f}x less")
    print(f"  patch-stage MACs {d['patch_stage_macs'] / 1e6:.1f}M vs {d['layerwise_patch_stage_macs'] / 1e6:.1f}M "
          f"(+{100 * (d['patch_stage_macs'] / d['layerwise_patch_stage_macs'] - 1):.0f}%); total "
          f"{d['total_macs'] / 1e6:.1f}M vs {d['layerwise_total_macs'] / 1e6:.1f}M "
          f"(+{100 * (d['total_macs'] / d['layerwise_total_macs'] - 1):.1f}%)")


def cmd_nas_space(a: argparse.Namespace) -> None:
    """TinyNAS stage 1: pick the (width, resolution) space with the most MACs among fitting subnets."""
    from . import search_space as ss
    widths = tuple(a.widths) if a.widths else ss.WIDTHS
    resolutions = tuple(a.resolutions) if a.resolutions else ss.RESOLUTIONS
    choice = ss.optimise(int(a.sram * 1024), int(a.flash * 1024), widths, resolutions, a.samples, a.patch,
                         seed=a.seed)
    if a.json:
        print(json.dumps(choice.to_dict()))
        return
    print(f"{'width':>5s} {'res':>4s} {'fit':>6s} {'mean MACs':>10s}")
    for s in choice.spaces:
        mark = "  <- chosen" if s is choice.best else ""
        print(f"{s.width:5.1f} {s.resolution:4d} {s.fit_fraction:6.0%} {s.mean_macs / 1e6:9.1f}M{mark}")
    print(f"chosen space: width {choice.best.width}, resolution {choice.best.resolution} "
          f"({choice.best.fit_fraction:.0%} of subnets fit, mean {choice.best.mean_macs / 1e6:.1f}M MACs); "
          f"{choice.evaluations_per_second:.0f} subnet evaluations per second")


def cmd_nas_train(a: argparse.Namespace) -> None:
    """TinyNAS stage 2a: train the weight-sharing supernet of one space (sandwich rule); with --resume,
    continue an interrupted run from the training state kept beside --out."""
    from . import nas, safeio, supernet, train
    safeio.refuse_existing(a.out, a.force or a.resume)
    train.seed_everything(a.seed)  # the supernet's initial weights too: a run repeats
    d = nas.synthetic_data(a.resolution, a.n_train, a.n_val, seed=a.seed, progress=True)
    net = supernet.Supernet(a.width, a.resolution)
    partial = train.resume_path(a.out)
    history = supernet.train(net, d.train, a.epochs, a.batch_size, a.lr, a.seed, largest_epochs=a.largest_epochs,
                             device=a.device, checkpoint=partial, resume=a.resume)
    nas.save_supernet(net, a.out, history)
    partial.unlink(missing_ok=True)
    accs = {name: supernet.accuracy(net, cfg, d.calib, d.val_x, d.val_y) for name, cfg in
            (("largest", supernet.largest(a.width, a.resolution)), ("smallest", supernet.smallest(a.width, a.resolution)))}
    print(json.dumps({"out": a.out, "width": a.width, "resolution": a.resolution, "history": history,
                      "val_accuracy": accs}))


def cmd_nas_search(a: argparse.Namespace) -> None:
    """TinyNAS stage 2b: evolutionary search of a supernet under SRAM / Flash / MAC limits."""
    from . import assets, evolution, nas, search_space, supernet
    limits = evolution.Limits(int(a.sram * 1024), int(a.flash * 1024), int(a.macs * 1e6) if a.macs else 0)
    if a.supernet:
        net = nas.load_supernet(assets.resolve(a.supernet))
    elif not a.train_supernet and "supernet" in assets.manifest():
        net = assets.load("supernet")
        print(f"searching the shipped supernet (space width {net.space.width}, resolution {net.space.resolution}; "
              "--train-supernet trains one for the space stage 1 picks)", file=sys.stderr)
    else:
        width, resolution = a.width, a.resolution
        if width is None or resolution is None:
            choice = search_space.optimise(limits.sram, limits.flash, n=a.space_samples, patch_based=a.patch)
            width, resolution = choice.best.width, choice.best.resolution
            print(f"stage 1: width {width}, resolution {resolution}", file=sys.stderr)
        net = supernet.Supernet(width, resolution)
        supernet.train(net, nas.synthetic_data(resolution, a.n_train, a.n_val, seed=a.seed).train, a.epochs,
                       seed=a.seed, largest_epochs=a.largest_epochs)
    d = nas.synthetic_data(net.space.resolution, a.n_train, a.n_val, seed=a.seed)
    result = nas.search(net, d, limits, a.patch, a.seed, population=a.population, parents=a.parents,
                        mutations=a.mutations, crossovers=a.crossovers, generations=a.generations)
    r = nas.report(result, limits)
    if a.json:
        print(json.dumps(r))
        return
    print(f"best subnet: {r['sram_bytes'] / 1024:.1f} kB SRAM, {r['flash_bytes'] / 1024:.1f} kB Flash, "
          f"{r['macs'] / 1e6:.1f}M MACs, supernet accuracy {r['supernet_accuracy']:.3f}"
          + (f", patch plan (split block, grid) {tuple(r['patch'])}" if r["patch"] else ""))
    for i, stage in enumerate(r["config"]["stages"]):
        print(f"  stage {i}: {stage['width']} ch x{stage['depth']} " +
              " ".join(f"k{b['kernel']}e{b['expand']}" for b in stage["blocks"]))


def cmd_nas_scratch(a: argparse.Namespace) -> None:
    """Train subnets from scratch, the reference a supernet is judged by: subnets spanning its space
    (does its ranking hold?) and, under one budget, MobileNetV2 scaled vs the searched winner over
    seeds. Saves after every run; --resume continues an interrupted reference."""
    import dataclasses

    import torch

    from . import assets, evolution, nas, safeio
    from .zoo import MBConvConfig
    safeio.refuse_existing(a.out, a.force or a.resume)
    limits = evolution.Limits(int(a.sram * 1024), int(a.flash * 1024))
    recipe = nas.Recipe(a.epochs, a.n_train, a.batch_size, a.lr)
    search = {"population": a.population, "parents": a.parents, "mutations": (a.population - a.parents) // 2,
              "crossovers": (a.population - a.parents) // 2, "generations": a.generations}
    info = {"space": [a.width, a.resolution], "limits": {"sram": limits.sram, "flash": limits.flash},
            "recipe": dataclasses.asdict(recipe), "seeds": a.seeds, "spanning": a.spanning,
            "search": {**search, "n_val": a.n_search_val, "seed": a.seed}, "winner": None}
    runs: list[dict] = []
    if a.resume and Path(a.out).exists():
        old = torch.load(a.out, map_location="cpu", weights_only=True)
        if {k: v for k, v in old["info"].items() if k != "winner"} != {k: v for k, v in info.items() if k != "winner"}:
            raise UserError(f"{a.out} was made with other settings; use another --out or drop --resume")
        info, runs = old["info"], old["runs"]

    def winner() -> MBConvConfig:
        if info["winner"] is None:
            net = nas.load_supernet(assets.resolve(a.supernet))
            if (net.space.width, net.space.resolution) != (a.width, a.resolution):
                raise UserError(f"supernet '{a.supernet}' is of width {net.space.width}, resolution "
                                f"{net.space.resolution}, not --width {a.width} --resolution {a.resolution}")
            d = nas.synthetic_data(a.resolution, 256, a.n_search_val, seed=0)
            info["winner"] = nas.report(nas.search(net, d, limits, seed=a.seed, **search), limits)
        return MBConvConfig.from_dict(info["winner"]["config"])

    plan = nas.scratch_plan(a.width, a.resolution, limits, a.spanning, a.seeds, winner, a.seed)
    for role, make, seed in plan[len(runs):]:
        cfg = make()
        model, rec = nas.train_from_scratch(cfg, recipe, seed)
        runs.append({"role": role, "config": cfg.to_dict(), "seed": seed, "model": model.state_dict(), **rec})
        nas.save_scratch(a.out, info, runs)
        print(f"{len(runs)}/{len(plan)} {role} seed {seed}: width {cfg.width}, {cfg.resolution} px, "
              f"{rec['seconds']:.0f} s, final train loss {rec['train_loss']:.3f}", file=sys.stderr, flush=True)
    print(json.dumps({"out": a.out, "runs": len(runs), "winner": info["winner"]}))


def cmd_data_synth(a: argparse.Namespace) -> None:
    """Write a synthetic person / no-person set in a real VWW layout (pyvww, mlperf or vww01)."""
    from . import data, safeio
    out, previous = safeio.claim_folder(a.out, "data", a.force)
    safeio.remove_previous(out, previous)  # the kit's own earlier set: never mixed with this one
    before = safeio.files_in(out)
    splits = [("train", a.n), ("val", a.n_val if a.n_val is not None else max(1, a.n // 5))] \
        if a.format == "pyvww" else [("train", a.n)]
    for split, n in splits:
        ds = data.synthetic(n, a.resolution, split, a.seed, a.difficulty)
        k = data.write(ds, out, a.format)
        note = f" ({n - k} scenes dropped: only people below the 2.5% box rule)" if k < n else ""
        print(f"wrote {k} {split} images ({a.resolution}x{a.resolution}, {a.format} layout) to {out}{note}")
    safeio.record(out, "data", before)


def cmd_data_info(a: argparse.Namespace) -> None:
    """Describe a VWW folder: layout, label rule, images per split and class, image size."""
    from . import data
    d = data.info(a.path)
    if a.json:
        print(json.dumps(d))
        return
    sizes = ", ".join(f"{h}x{w}" for h, w in d["image_size"][:3]) + (" ..." if len(d["image_size"]) > 3 else "")
    print(f"{d['path']}: {d['format']} layout\nlabel rule: {d['rule_text']}\nimage size: {sizes}")
    for split, c in d["splits"].items():
        print(f"  {split:5s} {c['images']:7d} images: {c['person']} person, {c['non_person']} non-person")


def cmd_train(a: argparse.Namespace) -> None:
    """Train a zoo model on person / no-person (synthetic or a VWW folder); also runs under torchrun."""
    from . import safeio, train
    if a.out:
        safeio.refuse_existing(a.out, a.force or a.resume)
    r = train.train(a.model, a.data, a.resolution, a.width, a.epochs, a.batch_size, a.lr, a.seed, a.out,
                    a.n_train, a.n_val, a.difficulty, progress=not a.json, device=a.device, resume=a.resume,
                    redistribute=a.redistribute)
    if train.distributed()[0] != 0:
        return
    if a.json:
        print(json.dumps(r))
        return
    print(f"{r['model']} (width {r['width']}, {r['resolution']}px) on {r['data']} ({r['format']}, {r['n_train']} train / "
          f"{r['n_val']} val images, {r['world_size']} process(es)): val accuracy {100 * r['val_accuracy']:.1f}% "
          f"after {r['epoch']} epochs" + (f"; checkpoint {a.out}" if a.out else ""))


def cmd_deploy(a: argparse.Namespace) -> None:
    """Emit C for a model, build it for an emulated STM32 (or the PC), run it and compare with int8ref."""
    import numpy as np

    from . import deploy, patch, safeio
    g, notes = deploy.load_int8(a.model, a.width, a.resolution, a.num_classes, a.config, size_limit=a.size_limit)
    if (a.patch_grid is None) != (a.split_op is None):
        raise UserError("patch-based inference needs both --patch-grid N and --split-op I "
                        "(`mcunet-lite patch MODEL --auto-split --sram-budget KB` suggests them)")
    pp = patch.plan(g, a.split_op, a.patch_grid) if a.patch_grid is not None else None
    inputs = [p for p in (a.model, a.input) if p]
    if a.output:
        safeio.output_file(a.output, inputs, (".npy", ".npz"), a.force)
    xs = load_input(a.input, g, a.size_limit) if a.input else None
    out, _ = safeio.claim_folder(a.out, "deploy", a.force)
    r = deploy.deploy(g, a.board, a.emulator, xs, pp, out, dsp=not a.portable, notes=notes)
    if a.output:
        if not r.outputs:
            raise UserError(f"no outputs to save: the {a.emulator} run reports a check, not the output values")
        safeio.save_arrays(a.output, [np.concatenate([row[k] for row in r.outputs]) for k in range(len(g.outputs))],
                           inputs, a.force)  # each output's batch of N
    print(json.dumps(r.to_dict()) if a.json else r.text())
    if not r.outputs_match:
        raise SystemExit(1)


def _ap_line(r: dict) -> str:
    """One line of AP figures (in %) from `boxes.evaluate`; n/a where no box counts."""
    pc = lambda v: "n/a" if v is None else f"{100 * v:.1f}"  # noqa: E731
    per = ", ".join(f"{c} {pc(v['ap'])} (small {pc(v['ap_small'])}, {v['boxes']} boxes)"
                    for c, v in r["classes"].items())
    return f"AP@0.5 {pc(r['map'])}, small objects {pc(r['map_small'])} | {per}"


def cmd_detect_train(a: argparse.Namespace) -> None:
    """Train the person / face detector (synthetic boxes by default) and report AP on validation."""
    from . import detect, safeio
    if a.out:
        safeio.refuse_existing(a.out, a.force or a.resume)
    r = detect.train(a.resolution, a.backbone, a.width, a.epochs, a.batch_size, a.lr, a.n_train, a.n_val, a.seed,
                     a.difficulty, a.data, a.val_data, a.images, a.mbconv, a.out, progress=not a.json, device=a.device,
                     resume=a.resume)
    if a.json:
        print(json.dumps(r))
        return
    print(f"detector {r['backbone']} w{r['width']} at {r['resolution']}px, {r['n_train']} training images, "
          f"{r['epochs']} epochs in {r['train_seconds']:.0f} s" + (f"; checkpoint {a.out}" if a.out else ""))
    print(f"validation ({r['n_val']} images): {_ap_line(r['val'])}")


def cmd_detect_eval(a: argparse.Namespace) -> None:
    """AP@0.5 of a trained detector (float, or int8 through the reference kernels) on a dataset."""
    from . import data, detdata, detect
    from . import assets
    model, cfg, meta = detect.load(assets.resolve(a.checkpoint))
    if a.resolution:  # a fully convolutional detector runs at any multiple of its deepest stride
        cfg = cfg.with_resolution(a.resolution)
    seed = meta.get("seed", 0) if a.seed is None else a.seed
    difficulty = meta.get("difficulty", 0.5) if a.difficulty is None else a.difficulty
    ds = detdata.load(a.data, a.split, cfg.resolution, a.images, a.n, seed, difficulty, progress=not a.json)
    run = None
    if a.int8:
        calib = detdata.synthetic(a.calib_n, cfg.resolution, "train", seed, difficulty, progress=False)
        run = detect.int8_runner(detect.quantized(model, cfg, data.to_tensor(calib.pixels).permute(0, 2, 3, 1).numpy()))
    r = {"checkpoint": a.checkpoint, "data": str(a.data), "split": a.split, "images": len(ds),
         "resolution": cfg.resolution, "arithmetic": "int8" if a.int8 else "float",
         **detect.evaluate(model, cfg, ds, run=run)}
    if a.json:
        print(json.dumps(r))
        return
    print(f"{a.checkpoint} on {a.data} ({a.split}, {len(ds)} images, {cfg.resolution}px, {r['arithmetic']}): {_ap_line(r)}")


def cmd_detect_synth(a: argparse.Namespace) -> None:
    """Write synthetic scenes with person / face boxes as images + COCO-style JSON."""
    from . import detdata
    ds = detdata.synthetic(a.n, a.resolution, a.split, a.seed, a.difficulty)
    path = detdata.write_coco(ds, a.out)
    c = ds.counts()
    print(f"wrote {len(ds)} {a.split} images ({a.resolution}x{a.resolution}) with {c['person']} person and "
          f"{c['face']} face boxes: {path}")


def cmd_detect_predict(a: argparse.Namespace) -> None:
    """Detect people and faces on a photo and write it with the boxes drawn (PNG)."""
    from . import assets, detect, safeio
    safeio.refuse_existing(a.out, a.force)
    model, cfg, _ = detect.load(assets.resolve(a.checkpoint))
    img = detect.photo(a.image)
    d = detect.predict(model, cfg, img, a.score)
    detect.draw(img, d, cfg.classes).save(a.out, format="PNG")
    found = [{"class": cfg.classes[c], "score": round(float(s), 4), "box": [round(float(v), 1) for v in b]}
             for b, s, c in zip(d.boxes, d.scores, d.labels)]
    if a.json:
        print(json.dumps({"image": str(a.image), "size": list(img.shape[:2]), "out": a.out, "detections": found}))
        return
    print(f"{len(found)} detection(s) above score {a.score} on {a.image} ({img.shape[1]}x{img.shape[0]}); "
          f"drawn to {a.out}")
    for f in found:
        print(f"  {f['class']:6s} {f['score']:.2f}  box {f['box']}")


def cmd_assets(a: argparse.Namespace) -> None:
    """List the trained course models, re-measure them against the manifest, retrain or publish one."""
    from . import assets
    if a.assets_command == "list":
        rows = assets.listing()
        if a.json:
            print(json.dumps(rows))
            return
        for r in rows:
            figures = ", ".join(f"{k} {v:.4f}" for k, v in r.get("metrics", {}).items() if isinstance(v, float))
            print(f"{r['name']:16s} {r['kind']:10s} " + (f"{r['bytes'] / 1e6:.2f} MB {r['storage']}, trained "
                  f"{r['train_seconds'] / 60:.0f} min; {figures}" if r["trained"] else "not trained yet"))
            print(f"{'':16s} made by: {r['command']}")
            for x in r.get("seeds", []):
                print(f"{'':16s} repeat run, seed {x['seed']}: {x['file']}, {r['headline']} "
                      f"{x['metrics'][r['headline']]:.4f}")
        return
    if a.assets_command == "publish":
        print(json.dumps(assets.publish(a.name, a.checkpoint, a.seed)))
        return
    if a.retrain:
        checkpoint = assets.retrain(a.retrain, a.work)
        if a.retrain not in assets.manifest():
            print(f"trained {checkpoint}; `mcunet-lite assets publish {a.retrain} {checkpoint}` ships it")
            return
        rows = [assets.compare(a.retrain, checkpoint)]
    else:
        rows = assets.verify(a.names or None, a.n)
        if not rows:
            print("no trained assets in the manifest yet: `mcunet-lite assets list` says how to make them")
            return
    if a.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['name']:16s} seed {r['seed']}: {r['metric']} on {r['n']} fresh validation scenes: measured "
                  f"{r['measured']:.4f}, manifest {r['manifest']:.4f} (tolerance {r['tolerance']:.4f}): "
                  f"{'ok' if r['ok'] else 'FAILED'}")
    if not all(r["ok"] for r in rows):
        raise SystemExit(1)


def cmd_demo(a: argparse.Namespace) -> None:
    """Run the kit end to end on offline defaults and write a report folder."""
    from . import demo
    out = demo.run(Path(a.out), a.mcu_images)
    print(f"report written to {out}/report.md")


def cmd_kit(a: argparse.Namespace) -> None:
    """Build the labs (execute solutions, generate student notebooks) or check a release."""
    from .kit import build as kit
    labs = a.lab or None
    if a.action == "book":
        html = kit.book(Path(a.out), instructor=a.instructor)
        print(f"{'instructor' if a.instructor else 'student'} book: {html / 'index.html'}")
        return
    if a.check:
        problems = kit.check(labs)
        for problem in problems:
            print(f"kit check: {problem}", file=sys.stderr)
        if problems:
            raise SystemExit(1)
        print(f"kit check: {len(labs or kit.lab_ids())} lab(s) up to date, no leaks into labs/")
        return
    for path in kit.build(labs, force=a.force, timeout=a.timeout):
        print(f"wrote {path.relative_to(kit.ROOT)}")


def cmd_grade(a: argparse.Namespace) -> None:
    """Grade a notebook with the package's checks, out of the student code's reach; never modifies it."""
    from .kit import grader
    for name, value in (("--timeout", a.timeout), ("--total-timeout", a.total_timeout), ("--memory", a.memory)):
        if not value > 0:
            raise UserError(f"{name} must be positive (got {value})")
    limits = grader.Limits(a.timeout, a.total_timeout, int(a.memory * (1 << 20)))
    report = grader.grade(a.notebook, limits, a.seed)
    print(json.dumps(report.to_dict()) if a.json else report.text())


def cmd_lab(a: argparse.Namespace) -> None:
    """Copy the student notebooks into a work folder (never overwriting) and open JupyterLab there."""
    from .kit import jupyter
    jupyter.open_labs(Path(a.dir), a.port, a.no_browser, a.copy_only)
