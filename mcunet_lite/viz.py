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
