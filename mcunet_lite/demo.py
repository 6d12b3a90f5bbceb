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


ASSET = "vww-classifier"   # the trained person detector every figure of the pipeline section comes from
N_FLOAT = 2000             # fresh validation scenes of the float accuracy
N_MCU = 300                # of those, the first ones also run on the emulated MCU (`demo --mcu-images`)
MCU_BATCH = 10             # images per firmware build (they sit in Flash beside the model)
PATCH_BUDGET = 128 * KB    # the patch plan's SRAM target: the STM32F405's 128 kB (the F746 has 320 kB)


def _nhwc(images):
    """uint8 NHWC images normalised as training normalises them, as float NHWC."""
    from . import data
    return data.to_tensor(images).permute(0, 2, 3, 1).numpy()


def _mcu_run(q, xq, plan, out: Path) -> tuple[list, object]:
    """Run int8 graph `q` patch by patch (`plan`) on every int8 input of `xq` as generated C on the
    emulated STM32F746, in firmware builds of `MCU_BATCH` images; (per-image outputs, the first
    build's report)."""
    from . import deploy
    outputs, first = [], None
    for i in range(0, len(xq), MCU_BATCH):
        r = deploy.deploy(q, "stm32f746", "qemu", inputs=xq[i:i + MCU_BATCH], patch_plan=plan, out=out / "firmware",
                          cache=out / "firmware-cache")
        if not r.outputs_match:
            raise RuntimeError(f"the emulated MCU's outputs differ from int8ref on images {i}..{i + MCU_BATCH - 1}")
        outputs += [row[0] for row in r.outputs]
        first = first or r
    return outputs, first


def section_pipeline(out: Path, n_mcu: int = N_MCU) -> list[str]:
    """One trained model through the whole pipeline: synthetic VWW data -> MobileNetV2 (the shipped
    `vww-classifier` asset) -> int8 -> arena schedule -> patch plan -> C -> emulated STM32F746,
    with the accuracy measured on the emulated MCU itself (on the first `n_mcu` validation scenes)."""
    import numpy as np

    from . import assets, data, deploy, int8ref, patch, quant, schedule, tflite_io, train
    e, model = assets.entry(ASSET), assets.load(ASSET)
    arch = e["model"]
    r, board = arch["resolution"], prof.MCU_BUDGETS["STM32F746"]
    val = data.synthetic(N_FLOAT, r, "val", assets.EVAL_SEED, progress=False)
    x, y = val.arrays()
    float_acc = train.evaluate(model, val)["accuracy"]
    calib = _nhwc(data.synthetic(assets.CALIB_N, r, "train", 0, progress=False).arrays()[0])
    g, q = quant.from_module(model, r, calib, f"{arch['model']}-vww")
    path = tflite_io.write(q, out / f"{ASSET}-int8.tflite")
    xq = quant.quantize_input(q, _nhwc(x[:n_mcu]))
    plan = schedule.plan(q)
    schedule.check(plan)
    pp = patch.auto_plan(q, PATCH_BUDGET)
    lines = ["## One trained model through the whole pipeline", "",
             f"The shipped course asset `{ASSET}`: {arch['model']} width {arch['width']} at {r}x{r}, trained by "
             f"`{e['command']}` ({e['train_seconds'] / 60:.0f} minutes of training on one CPU thread; "
             "`mcunet-lite assets list`). Each row below is computed by this run on fresh validation scenes "
             "(stream seed "
             f"{assets.EVAL_SEED}; training used seed {e['seed']}).", "",
             "| stage | result |", "|---|---|",
             f"| data | {N_FLOAT} synthetic VWW scenes at {r} px, {np.mean(y):.1%} with a person |",
             f"| float (PyTorch) top-1 | **{float_acc:.1%}** on {N_FLOAT} images (majority class "
             f"{max(np.mean(y), 1 - np.mean(y)):.1%}) |",
             f"| int8 post-training quantization | `{path.name}`, {path.stat().st_size / KB:.0f} kB, "
             f"{len(q.ops)} ops, calibrated on {assets.CALIB_N} training images |",
             f"| activation arena (scheduler, checked) | {plan.arena_bytes / KB:.0f} kB (lower bound "
             f"{plan.lower_bound_bytes / KB:.0f} kB) |",
             f"| patch plan (MCUNetV2) for {PATCH_BUDGET // KB} kB | {pp.grid}x{pp.grid} patches up to op "
             f"{pp.split_op}: "
             f"peak {pp.peak_sram_bytes / KB:.0f} kB instead of {pp.layerwise_peak_sram_bytes / KB:.0f} kB, "
             f"+{100 * (pp.total_macs / pp.layerwise_total_macs - 1):.1f}% MACs |"]
    if why := deploy.toolchain_missing():
        pred_ref = np.array([int8ref.run(q, xi[None])[0].argmax() for xi in xq])
        return lines + [f"| int8 (int8ref) top-1 | {np.mean(pred_ref == y[:n_mcu]):.1%} on the first {n_mcu} "
                        "images |", "",
                        f"The emulated MCU was skipped: {why}.", ""]
    mcu, rep = _mcu_run(q, xq, pp, out)
    pred_mcu = np.array([o.ravel().argmax() for o in mcu])
    f_sub = train.evaluate(model, data.synthetic(n_mcu, r, "val", assets.EVAL_SEED, progress=False))["accuracy"]
    fig = _save(_predictions_figure(x[:8], y[:8], pred_mcu[:8]), out / "mcu_predictions.png")
    return lines + [
        f"| C, patch-based, on the emulated STM32F746 (QEMU, Cortex-M7) | Flash {rep.flash_bytes / KB:.0f} of "
        f"{board[1] // KB} kB, SRAM {rep.sram_bytes / KB:.0f} of {board[0] // KB} kB (arena, scratch and stack, "
        "from the ELF) |",
        f"| instructions per inference | {rep.instructions:,d} for {rep.macs / 1e6:.1f}M MACs "
        f"({rep.instructions_per_mac:.2f} per MAC) |",
        f"| **top-1 computed on the emulated MCU** | **{np.mean(pred_mcu == y[:n_mcu]):.1%}** on the first "
        f"{n_mcu} images, the same as int8ref's (the MCU's outputs equal int8ref's byte for byte on every image); "
        f"float {f_sub:.1%} on the same images |", "",
        "The first validation scenes with the label the MCU gave them:", "", f"![MCU predictions]({fig})", ""]


def _predictions_figure(images, labels, preds):
    """A row of images titled with the MCU's answer (green where right, red where wrong)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(images), figsize=(1.6 * len(images), 2))
    for ax, im, t, p in zip(axes, images, labels, preds):
        ax.imshow(im)
        ax.set_title("person" if p else "no person", color="green" if p == t else "red", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


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
    """Meet the data (the VWW stand-in) at three resolutions."""
    from . import data
    fig = _save(viz.contact_sheet(resolutions=(32, 64, 96), n=4), out / "meet_the_data.png")
    return ["## Data: the Visual Wake Words stand-in", "",
            "Procedural person / no-person scenes (offline default; `mcunet-lite data info` describes real VWW "
            f"folders). Label rule: {data.RULES['pyvww']}. The same scenes at 32, 64 and 96 px:", "",
            f"![meet the data]({fig})", ""]


def run(out: Path, mcu_images: int = N_MCU) -> Path:
    """Run every section and write `out/report.md` with its figures; returns `out`. The emulated MCU
    classifies the first `mcu_images` validation scenes."""
    from functools import partial
    sections = [section_memory_wall, section_data, partial(section_pipeline, n_mcu=mcu_images), section_scheduling,
                section_patch, section_nas_space]
    import matplotlib
    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# mcunet-lite demo report", "", "Every figure below was computed by this run, offline.", ""]
    for section in sections:
        lines += section(out)
    (out / "report.md").write_text("\n".join(lines))
    return out
