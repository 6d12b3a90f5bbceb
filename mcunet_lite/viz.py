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
