"""Receptive-field redistribution (MCUNetV2 section 3.2): a smaller receptive field in the patch
stage, the capacity moved to later stages.

Patch-based inference recomputes the halo of every patch; the halo grows with the receptive field
of the patch stage. Redistribution shrinks that receptive field (kernel 3 in the patch stage, one
block per stage there: the stride block) and appends the removed blocks to the first stage after
the patch stage, so the network keeps its depth and most of its MACs where they are cheap to run.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

from . import patch
from .errors import UserError
from .zoo import Block, MBConvConfig


def redistribute(cfg: MBConvConfig, split_block: int) -> tuple[MBConvConfig, int]:
    """The redistributed config and its new split block (the patch stage ends at the same stride)."""
    total = sum(s.depth for s in cfg.stages)
    if not 1 <= split_block < total:
        raise UserError(f"split block {split_block} is out of range: the network has {total} blocks")
    new = copy.deepcopy(cfg)
    moved, start = [], 0
    for s in new.stages:
        inside = min(max(split_block - start, 0), s.depth)  # blocks of this stage in the patch stage
        start += s.depth
        for b in s.blocks[:inside]:
            b.kernel = 3
        moved += s.blocks[1:inside]
        s.blocks = s.blocks[:1] + s.blocks[inside:] if inside else s.blocks
        s.depth = len(s.blocks)
    new_split, start = split_block - len(moved), 0
    for s in new.stages:
        if start >= new_split:
            s.blocks += [Block(max(b.kernel for b in s.blocks), b.expand) for b in moved]
            s.depth = len(s.blocks)
            return new, new_split
        start += s.depth
    raise UserError("no stage starts after the patch stage to move the capacity to; split earlier")


@dataclass
class Comparison:
    """Patch-based figures of a network before and after redistribution, same grid."""

    before: patch.PatchPlan
    after: patch.PatchPlan
    config: MBConvConfig

    def rows(self) -> list[tuple[str, str, str]]:
        """(figure, before, after) rows for a table."""
        b, a = self.before, self.after

        def pct(x: int, y: int) -> str:
            return f"+{100 * (x / y - 1):.0f}%"
        return [("receptive field (px)", str(b.receptive_field), str(a.receptive_field)),
                ("input patch", "x".join(map(str, b.input_patch)), "x".join(map(str, a.input_patch))),
                ("patch-stage MAC overhead", pct(b.patch_stage_macs, b.layerwise_patch_stage_macs),
                 pct(a.patch_stage_macs, a.layerwise_patch_stage_macs)),
                ("layer-by-layer MACs", f"{b.layerwise_total_macs / 1e6:.1f}M", f"{a.layerwise_total_macs / 1e6:.1f}M"),
                ("patch-based MACs", f"{b.total_macs / 1e6:.1f}M", f"{a.total_macs / 1e6:.1f}M"),
                ("total MAC overhead", pct(b.total_macs, b.layerwise_total_macs),
                 pct(a.total_macs, a.layerwise_total_macs)),
                ("peak SRAM (kB)", f"{b.peak_sram_bytes / 1024:.1f}", f"{a.peak_sram_bytes / 1024:.1f}")]


def compare(cfg: MBConvConfig, split_block: int, grid: int) -> Comparison:
    """Plan `cfg` and its redistributed version patch by patch with the same grid."""
    g = cfg.graph()
    new, new_split = redistribute(cfg, split_block)
    h = new.graph()
    return Comparison(patch.plan(g, patch.split_after_block(g, split_block), grid),
                      patch.plan(h, patch.split_after_block(h, new_split), grid), new)
