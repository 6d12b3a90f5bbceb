"""ipywidgets explorers for JupyterLab: move a slider, see what fits on which microcontroller."""
from __future__ import annotations

from . import profile as prof
from . import zoo

KB = 1024


def memory_explorer(model: str = "mbv2"):
    """Width and resolution sliders -> peak SRAM and Flash of `model` against MCU budgets.

    The MCUNet trade-off in one picture (MCUNet section 3.1): a wider or larger-input network
    learns more, but its activations must fit SRAM and its int8 weights Flash.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    cfg = zoo.get(model)
    width = w.FloatSlider(value=cfg.width, min=0.1, max=1.4, step=0.05, description="width")
    res = w.IntSlider(value=cfg.resolution, min=32, max=256, step=16, description="resolution")
    rule = w.Dropdown(options=prof.RULES, value="tinyengine", description="rule")

    def draw(width: float, resolution: int, rule: str) -> None:
        p = prof.profile(zoo.get(model, width, resolution).graph(), rule)
        fig, axes = plt.subplots(1, 2, figsize=(9, 3))
        for ax, value, idx, label in ((axes[0], p.peak_sram_bytes, 0, "peak SRAM"), (axes[1], p.flash_bytes, 1, "Flash")):
            ax.barh([0], [value / KB], color="tab:blue")
            for (mcu, budget), style in zip(prof.MCU_BUDGETS.items(), ("--", "-.", ":")):
                ok = "fits" if value <= budget[idx] else "too big"
                ax.axvline(budget[idx] / KB, color="k", ls=style, label=f"{mcu} {budget[idx] // KB} kB ({ok})")
            ax.set_yticks([])
            ax.set_xlabel("kB")
            ax.set_title(f"{label}: {value / KB:.0f} kB")
            ax.legend(fontsize=7, loc="lower right")
        fig.suptitle(f"{model} width {width} at {resolution}px: {p.macs / 1e6:.1f}M MACs")
        fig.tight_layout()
        plt.show()

    return w.interactive(draw, width=width, resolution=res, rule=rule)


def space_explorer(samples: int = 200, min_count: int = 10):
    """SRAM / Flash budget sliders -> TinyNAS stage 1's chosen (width, resolution) and its FLOPs CDF.
    `samples` subnets per space (their costs are kept, so only the first draw of each counting mode
    profiles them), at least `min_count` of them fitting before a space can be chosen.

    MCUNet section 3.1: the space whose fitting subnets compute the most moves with the budget;
    the patch-based switch counts SRAM as MCUNetV2 runs the first blocks.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from . import search_space as ss
    from . import viz
    from .errors import UserError

    sram = w.IntSlider(value=320, min=64, max=512, step=32, description="SRAM kB", continuous_update=False)
    flash = w.IntSlider(value=1024, min=256, max=2048, step=128, description="Flash kB", continuous_update=False)
    patch = w.Checkbox(value=False, description="patch-based")

    def draw(sram: int, flash: int, patch: bool) -> None:
        try:
            choice = ss.optimise(sram * KB, flash * KB, n=samples, patch_based=patch, min_count=min_count)
        except UserError as e:  # no space has enough fitting subnets at these budgets
            print(e)
            return
        viz.flops_cdf(choice)
        plt.show()
        b = choice.best
        print(f"chosen: width {b.width}, resolution {b.resolution}: {b.fit_fraction:.0%} of subnets fit, "
              f"mean {b.mean_macs / 1e6:.1f}M MACs")

    return w.interactive(draw, sram=sram, flash=flash, patch=patch)
