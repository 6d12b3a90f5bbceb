"""The `mcunet-lite` command: one subcommand per stage of the pipeline.

Each subcommand is a `cmd_*` function registered in `build_parser`; user mistakes raise
`UserError` and print as one line with exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
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


def _mib(text: str) -> float:
    """A positive, finite number of MiB (argparse type)."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of MiB, got {text}")
    return value


def add_size_limit_arg(p: argparse.ArgumentParser) -> None:
    """--size-limit: the cap on an untrusted model file, its activations and an input batch."""
    p.add_argument("--size-limit", type=_mib, default=LIMIT_MIB, metavar="MIB",
                   help=".tflite files and the activations of a run larger than this are refused (default: %(default)s)")


def add_device_arg(p: argparse.ArgumentParser) -> None:
    """--device for the training subcommands (see `train.pick_device`)."""
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (a GPU when torch sees one); "
                   "torchrun runs stay on the CPU (default: %(default)s)")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The MODEL argument and the zoo options every model-taking subcommand shares."""
    p.add_argument("model", help=f"zoo model ({', '.join(zoo.MODELS)}) or a .tflite file")
    p.add_argument("--width", type=float, help="width multiplier (zoo models)")
    p.add_argument("--resolution", type=int, help="input resolution in pixels (zoo models)")
    p.add_argument("--num-classes", type=int, help="classifier outputs (zoo models)")
    p.add_argument("--config", help="JSON MBConv config for the 'mcunet' model (the format the NAS writes)")
    add_size_limit_arg(p)


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

    from . import quant, tflite_io
    from .from_torch import from_torch
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
    g = from_torch(module.eval(), resolution, name=a.model)
    images = quant.calibration_images(a.calib, a.calib_n, resolution)
    npy = a.calib.endswith(".npy")
    q = quant.quantize(g, images, a.percentile, input_quant=None if npy else (1 / 128, 0), float_io=a.float_io)
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
    safeio.output_file(a.output, [a.model, a.input], (".npy", ".npz"))  # before the run, not after
    ys = int8ref.run_all(g, load_input(a.input, g, a.size_limit))
    out = safeio.save_arrays(a.output, ys, [a.model, a.input])
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
    from . import nas, supernet, train
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
    from . import train
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
        safeio.output_file(a.output, inputs, (".npy", ".npz"))
    xs = load_input(a.input, g, a.size_limit) if a.input else None
    out, _ = safeio.claim_folder(a.out, "deploy", a.force)
    r = deploy.deploy(g, a.board, a.emulator, xs, pp, out, dsp=not a.portable, notes=notes)
    if a.output:
        if not r.outputs:
            raise UserError(f"no outputs to save: the {a.emulator} run reports a check, not the output values")
        safeio.save_arrays(a.output, [np.concatenate([row[k] for row in r.outputs]) for k in range(len(g.outputs))],
                           inputs)  # each output's batch of N
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
    from . import detect
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
    from . import detect
    from . import assets
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
        return
    if a.assets_command == "publish":
        print(json.dumps(assets.publish(a.name, a.checkpoint)))
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
            print(f"{r['name']:16s} {r['metric']} on {r['n']} fresh validation scenes: measured {r['measured']:.4f}, "
                  f"manifest {r['manifest']:.4f} (tolerance {r['tolerance']:.4f}): {'ok' if r['ok'] else 'FAILED'}")
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
    import subprocess
    from .kit import build as kit
    work = Path(a.dir)
    if work.exists() and not work.is_dir():
        raise UserError(f"--dir '{work}' is a file; give a folder for your copies of the labs")
    work.mkdir(parents=True, exist_ok=True)
    for nb in sorted(kit.LABS.glob("*.ipynb")):
        if not (work / nb.name).exists():
            copy_for_this_kernel(nb, work / nb.name)
            print(f"copied {nb.name} -> {work}/")
    if a.copy_only:
        return
    command, url = jupyterlab_command(work, a.port, a.no_browser)
    print(f"JupyterLab on {work}/: {url}  (Ctrl-C to stop)", flush=True)
    code = subprocess.run(command, check=False).returncode
    if code not in (0, 130, -2):  # 130 / -2: stopped with Ctrl-C
        raise UserError(f"JupyterLab failed (exit code {code}); see its messages above")


def copy_for_this_kernel(src: Path, dest: Path) -> None:
    """Copy a notebook with the kernelspec and language_info this machine's Python kernel reports:
    JupyterLab writes those into a notebook as it opens it, and any difference showed the student's
    untouched copy as modified."""
    import nbformat
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager
    nb = nbformat.read(src, as_version=4)
    spec = KernelSpecManager().get_kernel_spec("python3")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": spec.display_name, "language": spec.language}
    nb.metadata["language_info"] = dict(IPythonKernel.language_info)
    nbformat.write(nb, dest)


def jupyterlab_command(work: Path, port: int | None, no_browser: bool) -> tuple[list[str], str]:
    """JupyterLab on `work` at a known port and token, so the printed URL is the one it serves; as
    root (course containers) with --allow-root, which JupyterLab otherwise refuses."""
    import secrets
    port = port or free_port()
    token = secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={work.resolve()}", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    if no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command, f"http://localhost:{port}/lab?token={token}"


def free_port(first: int = 8888, tries: int = 50) -> int:
    """The first port from `first` on that nothing listens on (JupyterLab's own default is 8888)."""
    import socket
    for port in range(first, first + tries):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise UserError(f"no free port in {first}..{first + tries - 1}; pass --port")


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and their options."""
    ap = argparse.ArgumentParser(prog="mcunet-lite", description="Tiny deep learning on microcontrollers, "
                                 "rebuilt from MCUNet (V1 and V2).")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("profile", help="MACs, params, Flash and peak SRAM of a model")
    add_model_args(p)
    p.add_argument("--rule", choices=prof.RULES, default="tinyengine", help="SRAM counting rule")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("schedule", help="plan the activation arena (lifetimes, in-place ops, allocator)")
    add_model_args(p)
    p.add_argument("--allocator", choices=["naive", "greedy", "best"], default="best")
    p.add_argument("--no-inplace", action="store_true", help="no in-place depthwise / add / reshape")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("patch", help="MCUNetV2 patch-based inference plan: peak SRAM and MAC overhead")
    add_model_args(p)
    p.add_argument("--grid", type=int, help="N: an N x N grid of patches over the stage output")
    p.add_argument("--split-block", type=int, help="patch stage = stem + first K blocks (zoo models)")
    p.add_argument("--split-op", type=int, help="patch stage = ops 0..I in execution order (any model)")
    p.add_argument("--auto-split", action="store_true", help="pick the split and grid with the least MAC overhead")
    p.add_argument("--sram-budget", type=float, help="SRAM budget in kB for --auto-split")
    p.add_argument("--trimmed", action="store_true", help="trim border patches instead of fixed-size patches")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_patch)

    nas = sub.add_parser("nas", help="TinyNAS: search-space optimisation and one-shot search")
    nas_sub = nas.add_subparsers(dest="nas_command", required=True)
    p = nas_sub.add_parser("space", help="stage 1: choose width and resolution for SRAM / Flash budgets")
    p.add_argument("--sram", type=float, default=320, help="SRAM budget in kB (default: %(default)s)")
    p.add_argument("--flash", type=float, default=1024, help="Flash budget in kB (default: %(default)s)")
    p.add_argument("--patch", action="store_true", help="count SRAM with MCUNetV2 patch-based inference")
    p.add_argument("--samples", type=int, default=1000, help="subnets sampled per space (default: %(default)s)")
    p.add_argument("--widths", type=float, nargs="+", help="width multipliers to try")
    p.add_argument("--resolutions", type=int, nargs="+", help="resolutions to try")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_nas_space)

    p = nas_sub.add_parser("train-supernet", help="stage 2a: train the elastic supernet of one space")
    p.add_argument("--width", type=float, default=0.4)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--largest-epochs", type=int, default=0,
                   help="first epochs (of --epochs) that train only the largest subnet, as OFA starts")
    p.add_argument("--n-train", type=int, default=3000, help="synthetic training images")
    p.add_argument("--n-val", type=int, default=500, help="synthetic validation images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="supernet.pt")
    p.add_argument("--resume", action="store_true", help="continue an interrupted supernet run with the same "
                   "--out (its training state is kept in OUT.resume after every epoch)")
    add_device_arg(p)
    p.set_defaults(func=cmd_nas_train)

    p = nas_sub.add_parser("search", help="stage 2b: evolutionary search under SRAM / Flash / MAC limits")
    p.add_argument("--sram", type=float, default=320, help="SRAM budget in kB")
    p.add_argument("--flash", type=float, default=1024, help="Flash budget in kB")
    p.add_argument("--macs", type=float, help="MAC limit in millions (default: none)")
    p.add_argument("--patch", action="store_true", help="joint search with patch-based inference (MCUNetV2)")
    p.add_argument("--supernet", help="a trained supernet file, or 'supernet' for the shipped one (the default "
                   "once trained: `mcunet-lite assets list`)")
    p.add_argument("--train-supernet", action="store_true", help="choose the space for these budgets (stage 1) and "
                   "train its supernet here instead of searching the shipped one")
    p.add_argument("--width", type=float, help="space width when training a supernet here")
    p.add_argument("--resolution", type=int, help="space resolution when training a supernet here")
    p.add_argument("--space-samples", type=int, default=100, help="stage-1 samples per space")
    p.add_argument("--epochs", type=int, default=3, help="supernet epochs when training one here")
    p.add_argument("--largest-epochs", type=int, default=0,
                   help="first supernet epochs (of --epochs) that train only the largest subnet, as OFA starts")
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--n-val", type=int, default=500)
    p.add_argument("--population", type=int, default=100)
    p.add_argument("--parents", type=int, default=20)
    p.add_argument("--mutations", type=int, default=50)
    p.add_argument("--crossovers", type=int, default=50)
    p.add_argument("--generations", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_nas_search)

    p = sub.add_parser("kit", help="instructor: build labs from their sources, check a release, build the book")
    p.add_argument("action", choices=["build", "book"], help="build: execute solutions/ and generate labs/ and the "
                   "book's chapters; book: build the HTML book (the student book: no solutions)")
    p.add_argument("--instructor", action="store_true", help="book: the instructor's book, with solutions and "
                   "hidden tests")
    p.add_argument("--out", default="mcunet-lite-book", help="book: a new or empty folder (default: %(default)s)")
    p.add_argument("--check", action="store_true", help="only check: fail on stale files or leaks into labs/")
    p.add_argument("--lab", action="append", help="only this lab (NN_name); repeatable")
    p.add_argument("--force", action="store_true", help="overwrite edited student notebooks in labs/")
    p.add_argument("--timeout", type=int, default=600, help="per-cell time limit in seconds when executing")
    p.set_defaults(func=cmd_kit)

    p = sub.add_parser(
        "grade", help="grade a lab notebook (yours or a student's)", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grading EXECUTES the notebook's code. It runs in a separate process, in a fresh temporary\n"
        "folder and a process group of its own, under a memory cap and per-cell, per-exercise and total time\n"
        "limits that hold even when the code ignores signals; its output is capped at 1 MiB. The cases are drawn\n"
        "from a seed chosen now (printed; --seed or $MCUNET_LITE_GRADE_SEED repeats them) and the expected values\n"
        "are computed in the grader's process; only the student's return values come back, as plain data, and\n"
        "are compared there. A function that calls the library function computing its answer (its twin), however\n"
        "wrapped, fails that case. Nothing printed is read as a score, and the notebook file is never modified.\n"
        "It is not a container: the code can read what your user can read. Grade untrusted work as a user\n"
        "with no access to anything private (or in a container).")
    p.add_argument("notebook", help="path to the .ipynb to grade (it is never modified)")
    p.add_argument("--json", action="store_true", help="print {lab, score, max_score, seed, exercises, notebook_errors}")
    p.add_argument("--timeout", type=float, default=120, help="time limit of each cell and of each exercise's cases, "
                   "in seconds (default 120)")
    p.add_argument("--total-timeout", type=float, default=1800, help="time limit of the whole run (default 1800 s)")
    p.add_argument("--memory", type=float, default=4096, help="memory cap of the notebook's process in MiB "
                   "(default 4096)")
    p.add_argument("--seed", type=int, help="the cases' seed (default: $MCUNET_LITE_GRADE_SEED, else a fresh one)")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("lab", help="open JupyterLab on your own copy of the labs")
    p.add_argument("--dir", default="my-labs", help="your work folder (default: %(default)s)")
    p.add_argument("--copy-only", action="store_true", help="only copy the notebooks")
    p.add_argument("--port", type=int, help="JupyterLab's port (default: the first free one from 8888)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser; open the printed URL yourself")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("quantize", help="post-training int8 quantization of a zoo model -> .tflite")
    add_model_args(p)
    p.add_argument("--checkpoint", help="weights from `mcunet-lite train --out` (default: random init)")
    p.add_argument("--calib", default="synthetic",
                   help="calibration images: 'synthetic', a VWW folder or a .npy of NHWC images (default: %(default)s)")
    p.add_argument("--calib-n", type=int, default=64, help="number of calibration images (default: %(default)s)")
    p.add_argument("--percentile", type=float, help="clip activation ranges at this percentile (e.g. 99.99) "
                   "instead of min/max")
    p.add_argument("--float-io", action="store_true", help="float32 input/output through QUANTIZE/DEQUANTIZE")
    p.add_argument("--out", required=True, help="output .tflite file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("run", help="run a .tflite model with the int8 reference executor")
    p.add_argument("model", help="a .tflite file (int8)")
    p.add_argument("--input", required=True, help=".npy input in the model's own dtype and shape")
    p.add_argument("--output", required=True, help=".npy output (.npz for several outputs)")
    add_size_limit_arg(p)
    p.set_defaults(func=cmd_run)

    data_p = sub.add_parser("data", help="Visual Wake Words data: synthetic sets, dataset info")
    data_sub = data_p.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("synth", help="write a synthetic person / no-person set in a real VWW layout")
    p.add_argument("--n", type=int, required=True, help="number of scenes (pyvww: train split)")
    p.add_argument("--n-val", type=int, help="pyvww validation scenes (default: n / 5)")
    p.add_argument("--resolution", type=int, default=96, help="image size in pixels (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", choices=["mlperf", "pyvww", "vww01"], default="mlperf",
                   help="layout to write (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", type=float, default=0.5, help="0 (easy) .. 1 (hard) (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds files mcunet-lite did not write")
    p.set_defaults(func=cmd_data_synth)
    p = data_sub.add_parser("info", help="layout, label rule, counts per class and image size of a VWW folder")
    p.add_argument("path", help="a pyvww, vw_coco2014_96 or vww01 folder")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_data_info)

    p = sub.add_parser("train", help="train a zoo model on person / no-person (works under torchrun)")
    p.add_argument("--model", default="mbv2", help=f"zoo model ({', '.join(zoo.MODELS)}) (default: %(default)s)")
    p.add_argument("--width", type=float, help="width multiplier (default: the model's)")
    p.add_argument("--resolution", type=int, default=64, help="input resolution (default: %(default)s)")
    p.add_argument("--data", default="synthetic", help="'synthetic' or a VWW folder (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=5, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="global batch size (default: %(default)s)")
    p.add_argument("--lr", type=float, default=3e-3, help="AdamW peak learning rate (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="checkpoint file, written after every epoch")
    p.add_argument("--redistribute", type=int, metavar="K", help="train the receptive-field-redistributed version "
                   "of the MBConv model for a patch stage of K blocks (MCUNetV2 section 3.2)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its --out checkpoint "
                   "(same settings); without it the run starts over")
    p.add_argument("--n-train", type=int, default=4000, help="synthetic training scenes (default: %(default)s)")
    p.add_argument("--n-val", type=int, default=1000, help="synthetic validation scenes (default: %(default)s)")
    p.add_argument("--difficulty", type=float, default=0.5, help="synthetic difficulty 0..1 (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="no progress bars; print the final record as JSON")
    add_device_arg(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("deploy", help="emit C, build and run it on an emulated STM32 (or the PC), compare with int8ref")
    add_model_args(p)
    p.add_argument("--board", choices=["stm32f746", "stm32f405"], default="stm32f746",
                   help="target budget and CPU (default: %(default)s)")
    p.add_argument("--emulator", choices=["qemu", "renode", "host"], default="qemu",
                   help="qemu (Cortex-M, counts instructions), renode (writes .resc/.robot; runs them if renode-test "
                        "is installed) or host (the PC's gcc) (default: %(default)s)")
    p.add_argument("--patch-grid", type=int, help="N: run ops 0..I patch by patch on an N x N grid (MCUNetV2)")
    p.add_argument("--split-op", type=int, help="I: the last op of the patch stage")
    p.add_argument("--input", help=".npy of inputs (N, H, W, C) in the model's input dtype (default: 2 random)")
    p.add_argument("--output", help="save the device's outputs to this .npy (.npz for several outputs)")
    p.add_argument("--out", default="mcunet-deploy", help="project and build folder: new, empty or an earlier deploy's "
                   "(default: %(default)s)")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds files mcunet-lite did not write")
    p.add_argument("--portable", action="store_true", help="portable C kernels instead of the Cortex-M DSP ones")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_deploy)

    det = sub.add_parser("detect", help="tiny person / face detector: train, evaluate (AP@0.5), predict on a photo")
    det_sub = det.add_subparsers(dest="detect_command", required=True)
    data_help = ("'synthetic', 'synthetic-crowd' (many small figures), a WIDER Face folder, a COCO-style folder "
                 "or an instances JSON (with --images)")
    p = det_sub.add_parser("train", help="train on synthetic person / face boxes (or real data); report AP")
    p.add_argument("--backbone", default="mbv2", help="zoo MBConv model: mbv2 or mcunet (default: %(default)s)")
    p.add_argument("--mbconv", help="an MBConv JSON config (e.g. from `nas search`) as the backbone")
    p.add_argument("--width", type=float, default=0.35, help="width multiplier (default: %(default)s)")
    p.add_argument("--resolution", type=int, default=128, help="input resolution (default: %(default)s)")
    p.add_argument("--data", default="synthetic", help=f"training data: {data_help} (default: %(default)s)")
    p.add_argument("--val-data", help="validation data (default: the 'val' split of --data)")
    p.add_argument("--images", help="image folder of a COCO instances JSON")
    p.add_argument("--epochs", type=int, default=10, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=3e-3, help="AdamW peak learning rate (default: %(default)s)")
    p.add_argument("--n-train", type=int, default=4000, help="synthetic training scenes (default: %(default)s)")
    p.add_argument("--n-val", type=int, default=500, help="synthetic validation scenes (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", type=float, default=0.5, help="synthetic difficulty 0..1 (default: %(default)s)")
    p.add_argument("--out", help="checkpoint file (weights, config with anchors, validation AP)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run with the same --out "
                   "(its training state is kept in OUT.resume after every epoch)")
    p.add_argument("--json", action="store_true", help="no progress bars; print the final record as JSON")
    add_device_arg(p)
    p.set_defaults(func=cmd_detect_train)
    p = det_sub.add_parser("eval", help="AP@0.5 overall and on small objects, float or int8")
    p.add_argument("checkpoint", help="a file from `detect train --out`, or a shipped detector: "
                   "detector-128, detector-256 (`mcunet-lite assets list`)")
    p.add_argument("--data", default="synthetic", help=f"{data_help} (default: %(default)s)")
    p.add_argument("--images", help="image folder of a COCO instances JSON")
    p.add_argument("--split", default="val", choices=["train", "val"], help="(default: %(default)s)")
    p.add_argument("--n", type=int, default=500, help="synthetic scenes (default: %(default)s)")
    p.add_argument("--seed", type=int, help="synthetic stream seed (default: the checkpoint's)")
    p.add_argument("--difficulty", type=float, help="synthetic difficulty (default: the checkpoint's)")
    p.add_argument("--resolution", type=int, help="evaluate at another input resolution (default: the checkpoint's)")
    p.add_argument("--int8", action="store_true", help="quantize and run with the int8 reference kernels")
    p.add_argument("--calib-n", type=int, default=64, help="synthetic calibration images for --int8 (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_detect_eval)
    p = det_sub.add_parser("synth", help="write synthetic person / face boxes as images + COCO-style JSON")
    p.add_argument("--n", type=int, required=True, help="number of scenes")
    p.add_argument("--resolution", type=int, default=128, help="image size in pixels (default: %(default)s)")
    p.add_argument("--split", default="val", choices=["train", "val"], help="(default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder (images/ and annotations/instances_SPLIT.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", type=float, default=0.5, help="0 (easy) .. 1 (hard) (default: %(default)s)")
    p.set_defaults(func=cmd_detect_synth)
    p = det_sub.add_parser("predict", help="draw detections on a photo and write a PNG")
    p.add_argument("checkpoint", help="a file from `detect train --out`, or a shipped detector: "
                   "detector-128, detector-256 (`mcunet-lite assets list`)")
    p.add_argument("image", help="an image file, or a photo shipped with a package: astronaut, grace_hopper")
    p.add_argument("--out", default="detections.png", help="PNG to write (default: %(default)s)")
    p.add_argument("--score", type=float, default=0.3, help="score threshold (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_detect_predict)

    p = sub.add_parser("assets", help="trained course models: list, verify against the manifest, retrain")
    assets_sub = p.add_subparsers(dest="assets_command", required=True)
    q = assets_sub.add_parser("list", help="the assets, how each was made and the metrics it was measured at")
    q.add_argument("--json", action="store_true", help="print one JSON list")
    q = assets_sub.add_parser("verify", help="re-measure each asset's headline metric on fresh validation scenes")
    q.add_argument("names", nargs="*", help="assets to verify (default: every trained one)")
    q.add_argument("--n", type=int, help="validation scenes (default: as many as the manifest used)")
    q.add_argument("--retrain", metavar="NAME", help="reproduce asset NAME with its recorded command, then compare")
    q.add_argument("--work", default="mcunet-lite-assets", help="where --retrain trains (default: %(default)s)")
    q.add_argument("--json", action="store_true", help="print one JSON list")
    q = assets_sub.add_parser("publish", help="maintainers: ship a checkpoint made by an asset's recipe")
    q.add_argument("name")
    q.add_argument("checkpoint")
    p.set_defaults(func=cmd_assets)

    p = sub.add_parser("demo", help="run the whole pipeline on offline defaults; writes a report")
    p.add_argument("--out", default="mcunet-lite-demo", help="report folder (default: %(default)s)")
    p.add_argument("--mcu-images", type=int, default=300, help="validation images the emulated MCU classifies "
                   "(default: %(default)s)")
    p.set_defaults(func=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try
    except UserError as e:
        print(f"mcunet-lite: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `mcunet-lite ... | head`: the reader left; stop quietly, as SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
