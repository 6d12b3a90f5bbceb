"""The kit's main job: the MCUNet pipeline end to end on offline defaults, as a report folder.

Each stage of the pipeline adds its section here, so the demo always shows the whole kit.
"""
from __future__ import annotations

from pathlib import Path

from . import profile as prof
from . import viz, zoo

KB = 1024


def _save(fig, path: Path) -> str:
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path.name


def section_memory_wall(out: Path) -> list[str]:
    """Profile the zoo under both counting rules; draw weights vs activations and per-block peaks."""
    models = [zoo.get("resnet18"), zoo.mobilenet_v2(), zoo.get("mbv1"), zoo.get("mcunet")]
    lines = ["## 1. The memory wall (profile)", "",
             "| model | resolution | width | MACs | params | Flash kB | peak SRAM kB (naive) | "
             "peak SRAM kB (tinyengine) | fits STM32F746 (320 kB)? |", "|---|---|---|---|---|---|---|---|---|"]
    te = []
    for cfg in models:
        g = cfg.graph()
        naive, p = prof.profile(g, "naive"), prof.profile(g, "tinyengine")
        te.append(p)
        fits = "yes" if p.peak_sram_bytes <= prof.MCU_BUDGETS["STM32F746"][0] else "no"
        lines.append(f"| {p.model} | {p.resolution} | {p.width} | {p.macs / 1e6:.1f}M | {p.params / 1e6:.2f}M | "
                     f"{p.flash_bytes / KB:.0f} | {naive.peak_sram_bytes / KB:.0f} | {p.peak_sram_bytes / KB:.0f} | {fits} |")
    f1 = _save(viz.size_vs_activation(te[:2]), out / "size_vs_activation.png")
    f2 = _save(viz.block_memory(te[1]), out / "mbv2_block_memory.png")
    r18, mb = te[0], te[1]
    lines += ["", f"MobileNetV2 has {r18.params / mb.params:.1f}x fewer parameters than ResNet-18, yet its peak "
              f"activation memory is {mb.peak_sram_bytes / r18.peak_sram_bytes:.2f}x ResNet-18's "
              f"({mb.peak_sram_bytes / KB:.0f} kB vs {r18.peak_sram_bytes / KB:.0f} kB).", "",
              f"![weights vs activations]({f1})", "",
              f"MobileNetV2's peak is at `{mb.peak_layer}`; the first blocks need far more SRAM than the rest:", "",
              f"![per-block memory]({f2})", ""]
    return lines


def section_int8(out: Path) -> list[str]:
    """Quantize MobileNetV2-w0.35 (96 px) to int8, export .tflite, check int8ref against TFLite Micro."""
    import numpy as np
    import torch

    from . import data, int8ref, quant, tflite_io
    from .from_torch import from_torch
    ds = data.synthetic(96, 96, "val", progress=False)
    x = data.to_tensor(ds.arrays()[0])
    torch.manual_seed(0)
    net = zoo.mobilenet_v2(0.35, 96, 2).module().train()
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.momentum = None  # BatchNorm statistics: the average over one batch of synthetic images
    with torch.no_grad():
        net(x[:32])
    g = from_torch(net.eval(), 96, name="mbv2")
    images = x.permute(0, 2, 3, 1).numpy()
    q = quant.quantize(g, images[:64], input_quant=(1 / 128, 0))
    path = tflite_io.write(q, out / "mbv2-w0.35-r96-int8.tflite")
    agree = quant.float_vs_int8(g, q, images[64:])
    inputs = [quant.quantize_input(q, im[None]) for im in images[64:72]]
    try:
        from tflite_micro import runtime
        it = runtime.Interpreter.from_file(str(path))
        diff = total = 0
        for xi in inputs:
            it.set_input(xi, 0)
            it.invoke()
            diff, total = diff + int(np.sum(it.get_output(0) != int8ref.run(q, xi))), total + it.get_output(0).size
        check = f"{diff} of {total} output elements differ ({len(inputs)} synthetic images)"
    except ImportError:
        check = "not run: tflite-micro is not installed (pip install --pre tflite-micro)"
    return ["## 2. int8 quantization (TFLite arithmetic)", "",
            "MobileNetV2-w0.35 at 96x96 with 2 classes, **random weights** (BatchNorm statistics from 32 synthetic "
            "images; not trained), quantized post-training: per-channel symmetric int8 weights, per-tensor int8 "
            "activations calibrated (min/max) on 64 synthetic VWW images, int32 biases, ReLU6 folded into the clamp. "
            f"Exported as `{path.name}` ({path.stat().st_size / KB:.0f} kB, "
            f"{len(tflite_io.read(path).ops)} TFLite ops).",
            "", "| check | result |", "|---|---|",
            f"| int8ref vs TFLite Micro reference kernels | {check} |",
            f"| float vs int8 top-1 agreement ({agree['n']} held-out images) | {agree['top1_agreement']:.3f} |",
            f"| largest / mean abs. logit difference | {agree['max_abs_diff']:.3f} / "
            f"{agree['mean_abs_diff']:.3f} |", ""]


def section_scheduling(out: Path) -> list[str]:
    """Plan the arena of MobileNetV2 w0.35 r144 with each allocator; check it; draw the timeline."""
    from . import schedule
    g = zoo.mobilenet_v2(0.35, 144).graph()
    lines = ["## Memory scheduling (TinyEngine)", "", "MobileNetV2 w0.35 at 144x144:", "",
             "| allocator | in-place | arena kB | lower bound kB |", "|---|---|---|---|"]
    for allocator, inplace in (("naive", False), ("greedy", False), ("greedy", True), ("best", True)):
        p = schedule.plan(g, allocator, inplace)
        schedule.check(p)
        lines.append(f"| {allocator} | {'yes' if inplace else 'no'} | {p.arena_bytes / KB:.1f} | "
                     f"{p.lower_bound_bytes / KB:.1f} |")
    f = _save(viz.memory_timeline(schedule.plan(g)), out / "memory_timeline.png")
    return lines + ["", "Every plan passed the independent overlap checker.", "", f"![memory timeline]({f})", ""]


def section_patch(out: Path) -> list[str]:
    """MCUNetV2 on MobileNetV2 (1.0, 224): patch-based peak and overhead, before and after RD."""
    from . import patch, redistribute
    g = zoo.mobilenet_v2(1.0, 224).graph()
    p = patch.plan(g, patch.split_after_block(g, 4), 4)
    rd = redistribute.compare(zoo.mobilenet_v2(1.0, 224), 4, 4)
    f = _save(viz.patch_vs_layerwise(p), out / "patch_vs_layerwise.png")
    lines = ["## Patch-based inference (MCUNetV2)", "",
             f"MobileNetV2 (1.0, 224), stem + 4 blocks in 4x4 patches: input patch {p.input_patch[0]}x"
             f"{p.input_patch[1]}, peak SRAM {p.layerwise_peak_sram_bytes / KB:.0f} kB -> {p.peak_sram_bytes / KB:.1f} kB "
             f"({p.layerwise_peak_sram_bytes / p.peak_sram_bytes:.1f}x less), patch-stage MACs "
             f"+{100 * (p.patch_stage_macs / p.layerwise_patch_stage_macs - 1):.0f}%.", "",
             f"![patch vs layer by layer]({f})", "", "Receptive-field redistribution:", "",
             "| figure | MobileNetV2 | MobileNetV2-RD |", "|---|---|---|"]
    return lines + [f"| {a} | {b} | {c} |" for a, b, c in rd.rows()] + [""]


def section_nas_space(out: Path) -> list[str]:
    """TinyNAS stage 1 at 320 kB / 1 MB, with a few samples per space (the CLI uses 1000)."""
    from . import search_space as ss
    choice = ss.optimise(320 * KB, 1024 * KB, (0.3, 0.5, 0.7, 1.0), (96, 128, 160, 192), n=25)
    f = _save(viz.flops_cdf(choice), out / "nas_space_cdf.png")
    b = choice.best
    return ["## TinyNAS search-space optimisation", "",
            f"At 320 kB SRAM / 1 MB Flash (25 subnets per space): chosen width {b.width}, resolution {b.resolution}: "
            f"{b.fit_fraction:.0%} of its subnets fit, mean {b.mean_macs / 1e6:.1f}M MACs "
            f"({choice.evaluations_per_second:.0f} subnet evaluations per second).", "", f"![FLOPs CDF]({f})", ""]


def section_data(out: Path) -> list[str]:
    """Meet the data (the VWW stand-in) at three resolutions, then train a tiny model for a few seconds."""
    import time
    import torch
    from . import data, train
    fig = _save(viz.contact_sheet(resolutions=(32, 64, 96), n=4), out / "meet_the_data.png")
    tr, va = data.synthetic(1000, 32, "train", progress=False), data.synthetic(400, 32, "val", progress=False)
    torch.manual_seed(0)
    net = zoo.get("mbv1", 0.25, 32, num_classes=2).module()
    t0 = time.perf_counter()
    acc = train.fit(net, tr, va, epochs=2, progress=False)[-1]["val_accuracy"]
    majority = max(va.labels.mean(), 1 - va.labels.mean())
    return ["## Data: the Visual Wake Words stand-in", "",
            "Procedural person / no-person scenes (offline default; `mcunet-lite data info` describes real VWW "
            f"folders). Label rule: {data.RULES['pyvww']}. The same scenes at 32, 64 and 96 px:", "",
            f"![meet the data]({fig})", "",
            f"MobileNetV1 w0.25 at 32x32, trained for 2 epochs on {len(tr)} synthetic images "
            f"({time.perf_counter() - t0:.1f} s): validation accuracy **{acc:.1%}** on {len(va)} images "
            f"(majority class: {majority:.1%}). That is a few seconds of training, far from converged; "
            "`python benchmarks/data_bench.py` measures the resolution / width trade-off properly.", ""]


def section_deploy(out: Path) -> list[str]:
    """MobileNetV1 w0.25 at 96 px (the MLPerf Tiny VWW shape, random weights) emitted as C and run on
    the emulated STM32F746 (QEMU), checked against int8ref; skipped without the ARM toolchain."""
    import tempfile

    from . import deploy, schedule
    lines = ["## Deploy: generated C on an emulated STM32F746 (TinyEngine)", ""]
    if why := deploy.toolchain_missing():
        return lines + [f"Skipped: {why}.", ""]
    g, notes = deploy.load_int8("mbv1")
    with tempfile.TemporaryDirectory() as tmp:
        r = deploy.deploy(g, "stm32f746", "qemu", out=Path(tmp), notes=notes)
    predicted = schedule.plan(g).arena_bytes
    return lines + [
        f"MobileNetV1 w0.25 at 96x96 (the MLPerf Tiny VWW architecture; {notes[0]}) as generated C with the "
        "Cortex-M DSP kernels, on QEMU's Cortex-M7 held to the STM32F746's 320 kB SRAM / 1 MB Flash:", "",
        "| figure | value |", "|---|---|",
        f"| Flash (code + weights) | {r.flash_bytes / KB:.1f} kB |",
        f"| SRAM (arena + scratch + stack, from the ELF) | {r.sram_bytes / KB:.1f} kB |",
        f"| activation arena | {r.arena_bytes} B (scheduler predicted {predicted} B) |",
        f"| instructions per inference | {r.instructions:,d} for {r.macs / 1e6:.2f}M MACs "
        f"({r.instructions_per_mac:.2f} per MAC) |",
        f"| outputs identical to int8ref ({r.n_inputs} random inputs) | {'yes' if r.outputs_match else 'NO'} |", "",
        "`mcunet-lite deploy MODEL --board stm32f746|stm32f405` does the same for any model; "
        "`python benchmarks/deploy_table.py` measures the four real models.", ""]


SECTIONS = [section_memory_wall, section_int8, section_scheduling, section_patch, section_nas_space, section_data,
            section_deploy]


def run(out: Path) -> Path:
    """Run every section and write `out/report.md` with its figures; returns `out`."""
    import matplotlib
    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# mcunet-lite demo report", "", "Every figure below was computed by this run, offline.", ""]
    for section in SECTIONS:
        lines += section(out)
    (out / "report.md").write_text("\n".join(lines))
    return out
