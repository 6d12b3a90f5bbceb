"""Matplotlib figures for the memory story of MCUNet; each function returns a Figure."""
from __future__ import annotations

from .profile import MCU_BUDGETS, Profile

KB = 1024


def size_vs_activation(profiles: list[Profile]):
    """Flash (int8 weights) next to peak SRAM (int8 activations) per model: smaller weights do not
    mean smaller activations (MCUNet figure 2: MobileNetV2 vs ResNet-18)."""
    import matplotlib.pyplot as plt
    import numpy as np
    fig, ax = plt.subplots(figsize=(6, 3.6))
    x = np.arange(len(profiles))
    flash = [p.flash_bytes / KB / KB for p in profiles]
    sram = [p.peak_sram_bytes / KB / KB for p in profiles]
    for dx, vals, label in ((-0.2, flash, "model size (Flash, MB)"), (0.2, sram, "peak activation (SRAM, MB)")):
        bars = ax.bar(x + dx, vals, 0.4, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(x, [f"{p.model}\n{p.resolution}px w{p.width}" for p in profiles])
    ax.set_ylabel("MB (int8)")
    ax.set_title(f"Weights vs activations ({profiles[0].rule} rule)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def block_memory(p: Profile, budgets: dict[str, tuple[int, int]] = MCU_BUDGETS):
    """Peak SRAM per block against MCU SRAM budgets: the first blocks dominate (MCUNetV2 figure 1)."""
    import matplotlib.pyplot as plt
    blocks = p.blocks()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    kb = [v / KB for v in blocks.values()]
    ax.bar(range(len(kb)), kb, color=["tab:red" if v * KB > min(b[0] for b in budgets.values()) else "tab:blue"
                                      for v in kb])
    for (name, (sram, _)), style in zip(budgets.items(), ("--", "-.", ":")):
        ax.axhline(sram / KB, color="k", ls=style, lw=1, label=f"{name} SRAM {sram // KB} kB")
    ax.set_xticks(range(len(kb)), list(blocks), rotation=90, fontsize=7)
    ax.set_ylabel("peak SRAM (kB)")
    ax.set_title(f"{p.model} {p.resolution}px: per-block peak memory ({p.rule} rule)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def memory_timeline(plan, max_labels: int = 6):
    """The arena over time: each tensor a rectangle (ops it lives across x bytes it holds), the
    picture of TinyEngine's memory scheduling (MCUNet figure 4)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    fig, ax = plt.subplots(figsize=(9, 3.8))
    n = len(plan.graph.ops)
    biggest = sorted(plan.tensors.values(), key=lambda t: -t.size)[:max_labels]
    for k, t in enumerate(plan.tensors.values()):
        x0, x1 = max(t.first_op, 0) - 0.45, min(t.last_op, n - 1) + 0.45
        ax.add_patch(Rectangle((x0, t.offset / KB), x1 - x0, t.size / KB, alpha=0.6, color=f"C{k % 10}", lw=0.5))
        if t in biggest:
            ax.text((x0 + x1) / 2, (t.offset + t.size / 2) / KB, t.name.replace(".conv", ""), fontsize=6,
                    ha="center", va="center")
    ax.axhline(plan.arena_bytes / KB, color="k", ls="--", lw=1, label=f"arena {plan.arena_bytes / KB:.0f} kB")
    ax.axhline(plan.lower_bound_bytes / KB, color="tab:red", ls=":", lw=1,
               label=f"lower bound {plan.lower_bound_bytes / KB:.0f} kB")
    ax.set_xlim(-1, n)
    ax.set_ylim(0, plan.arena_bytes / KB * 1.08)
    ax.set_xlabel("op index (execution order)")
    ax.set_ylabel("arena address (kB)")
    ax.set_title(f"{plan.graph.meta.get('model', plan.graph.name)}: {plan.allocator} allocator, "
                 f"in-place {'on' if plan.inplace else 'off'}")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def live_memory(plan, budget: int = MCU_BUDGETS["STM32F746"][0]):
    """Bytes in use at every op against an SRAM budget: where the peak is, and by how much."""
    import matplotlib.pyplot as plt
    live = plan.live_bytes()
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.bar(range(len(live)), [v / KB for v in live], color=["tab:red" if v > budget else "tab:blue" for v in live])
    ax.axhline(budget / KB, color="k", ls="--", lw=1, label=f"budget {budget // KB} kB")
    ax.set_xlabel("op index (execution order)")
    ax.set_ylabel("live kB")
    ax.set_title(f"{plan.graph.meta.get('model', plan.graph.name)}: per-op live memory (peak {max(live) / KB:.0f} kB)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def patches_on_image(plan, image=None, patches: tuple[int, ...] | None = None):
    """The input regions of some patches over the input image: each patch's own tile (solid)
    and the halo it recomputes (its receptive-field margin), MCUNetV2 figure 2."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle
    g = plan.graph
    _, h, w, _ = g.shape(g.inputs[0])
    _, oh, ow, _ = g.shape(plan.stage_output)
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    ax.imshow(image if image is not None else np.full((h, w, 3), 0.85), extent=(0, w, h, 0))
    n = plan.grid
    chosen = patches if patches is not None else (0, n + 1, n * n - 1) if n > 1 else (0,)
    for k, i in enumerate(chosen):
        r = plan.regions[i][g.inputs[0]]
        t = plan.tiles[i]
        sy, sx = h / oh, w / ow
        ax.add_patch(Rectangle((r[2], r[0]), r[3] - r[2], r[1] - r[0], fill=False, lw=2, ls="--", color=f"C{k}",
                               label=f"patch {i}: input {r[1] - r[0]}x{r[3] - r[2]} (with halo)"))
        ax.add_patch(Rectangle((t[2] * sx, t[0] * sy), (t[3] - t[2]) * sx, (t[1] - t[0]) * sy, alpha=0.3,
                               color=f"C{k}"))
    for i in range(1, n):
        ax.axhline(plan.tiles[i * n][0] * h / oh, color="w", lw=0.8)
        ax.axvline(plan.tiles[i][2] * w / ow, color="w", lw=0.8)
    ax.set_xlim(-8, w + 8)
    ax.set_ylim(h + 8, -8)
    ax.set_title(f"{n}x{n} patches, receptive field {plan.receptive_field} px")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, -0.32))
    fig.tight_layout()
    return fig


def patch_vs_layerwise(plan, budget: int = MCU_BUDGETS["STM32F746"][0]):
    """Per-op live memory: layer by layer vs patch-based (one patch's arena plus the stage-output
    buffer, then the rest layer by layer), against an SRAM budget (MCUNetV2 figure 3)."""
    import matplotlib.pyplot as plt

    from .schedule import plan as schedule_plan
    full = schedule_plan(plan.graph, reorder=False).live_bytes()
    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.plot([v / KB for v in full], label=f"layer by layer (peak {max(full) / KB:.0f} kB)", color="tab:red")
    ax.plot([v / KB for v in plan.per_op_bytes], label=f"patch-based (peak {plan.peak_sram_bytes / KB:.0f} kB)",
            color="tab:blue")
    ax.axvspan(-0.5, plan.split_op + 0.5, color="tab:blue", alpha=0.08, label="patch stage")
    ax.axhline(budget / KB, color="k", ls="--", lw=1, label=f"budget {budget // KB} kB")
    ax.set_xlabel("op index")
    ax.set_ylabel("live kB")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(f"{plan.graph.meta.get('model', plan.graph.name)}: {plan.grid}x{plan.grid} patches")
    fig.tight_layout()
    return fig


def flops_cdf(choice, k: int = 6):
    """CDF of MACs of the fitting subnets (MCUNet figure 3) of the chosen space and the `k - 1` other
    spaces with the most mean MACs, with how many subnets fit in the legend. Every subnet is a
    marker, so a space where one subnet fits shows as a point; spaces with too few fitting subnets
    to be chosen may lie further right than the chosen one."""
    import matplotlib.pyplot as plt
    import numpy as np
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    others = sorted((s for s in choice.spaces if s.fitting_macs and s is not choice.best), key=lambda s: -s.mean_macs)
    for s in sorted([choice.best] + others[:k - 1], key=lambda s: -s.mean_macs):
        macs = np.sort(np.array(s.fitting_macs)) / 1e6
        best = s is choice.best
        ax.plot(macs, np.arange(1, len(macs) + 1) / len(macs), lw=2.5 if best else 1.2, marker="o",
                ms=4 if best else 2.5, label=f"w{s.width} r{s.resolution}: mean {s.mean_macs / 1e6:.0f}M, "
                f"{len(s.fitting_macs)}/{s.n} fit" + (" (chosen)" if best else ""))
    ax.set_xlabel("MACs of subnets that fit (M)")
    ax.set_ylabel("CDF")
    mode = "patch-based" if choice.patch_based else "layer-by-layer"
    ax.set_title(f"Search spaces under {choice.sram // 1024} kB SRAM / {choice.flash // 1024} kB Flash ({mode})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def contact_sheet(source: str = "synthetic", resolutions: tuple[int, ...] = (32, 64, 96), n: int = 4,
                  split: str = "val", seed: int = 0, difficulty: float = 0.5):
    """Meet the data: `n` person and `n` no-person images, each at every resolution, under the
    label rule of the source (VWW, Chowdhery et al. 2019): small people vanish at low resolution,
    which is why MCUNet searches resolution and width together (MCUNet section 3.1)."""
    import textwrap
    import matplotlib.pyplot as plt
    import numpy as np
    from . import data
    sets = {r: data.synthetic(8 * n, r, split, seed, difficulty, progress=False) if source == "synthetic"
            else data.load(source, split, r) for r in resolutions}
    first = sets[resolutions[0]]
    picks = list(np.flatnonzero(first.labels == 1)[:n]) + list(np.flatnonzero(first.labels == 0)[:n])
    fig, axes = plt.subplots(len(resolutions), len(picks), figsize=(1.25 * len(picks), 1.3 * len(resolutions) + 0.8),
                             squeeze=False)
    for row, r in enumerate(resolutions):
        for col, i in enumerate(picks):
            ax = axes[row, col]
            ax.imshow(sets[r].image(i), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("person" if first.labels[i] else "no person", fontsize=8)
            if col == 0:
                ax.set_ylabel(f"{r} px", fontsize=8)
    fig.suptitle(textwrap.fill(f"{first.format} ({split}): {data.RULES[first.rule]}", 90), fontsize=8)
    fig.tight_layout()
    return fig
