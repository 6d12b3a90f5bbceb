"""A tiny YOLO-style person / face detector on an MBConv backbone: model, loss, decoding, training.

MCUNetV2 (section 5.3) pairs its backbone with a YOLOv3 detection head and shows that
patch-based inference fits a detector at a larger input resolution in the same SRAM. Here the
backbone is a zoo (or NAS) MBConv trunk cut after its last tapped stage; the tapped stages (by
default strides 8 and 16) are joined by a top-down path (1x1 conv, nearest upsampling, add) and
each gets a head of two convolutions (a 3x3 depthwise and a 1x1 predictor) that outputs, per cell
and anchor, YOLOv3's box offsets (tx, ty, tw, th), an objectness logit and one logit per class
(Redmon & Farhadi 2018, section 2). The graph ends at those raw head tensors, so it holds conv,
add and resize ops only and quantizes, schedules, patches and deploys like a classifier;
decoding and non-maximum suppression run outside it, in numpy, as on the microcontroller's host
code. Anchors come from k-means over the training boxes with an IoU distance (YOLOv2's
"dimension clusters", Redmon & Farhadi 2017, section 2).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import zoo
from .boxes import Detections, evaluate as evaluate_boxes, iou, nms
from .detdata import CLASSES, BoxSet, collate, letterbox, letterbox_boxes
from .errors import UserError
from .ir import Graph

Anchors = tuple[tuple[tuple[float, float], ...], ...]  # per head: (w, h) as fractions of the input side
MAX_LOG_WH = 4.0  # tw, th are clamped before exp when decoding: a box at most e^4 = 55x its anchor
OBJ_PRIOR = 0.01  # initial objectness probability (the predictor bias), so training starts stable


# --------------------------------------------------------------------------------- the model
@dataclass
class DetectorConfig:
    """What defines a detector: the whole backbone (an `MBConvConfig` dict), the stages that get a
    head (`taps`, stage indices), anchors per head and the class names."""

    backbone: dict
    taps: tuple[int, ...] = (2, 4)
    anchors: Anchors | None = None
    classes: tuple[str, ...] = CLASSES
    num_anchors: int = 3

    def __post_init__(self) -> None:
        self.taps = tuple(self.taps)
        n_stages = len(self.backbone["stages"])
        if not self.taps or list(self.taps) != sorted(set(self.taps)) or self.taps[0] < 0 or self.taps[-1] >= n_stages:
            raise UserError(f"taps {self.taps} must be increasing stage indices of the {n_stages}-stage backbone")
        if self.resolution % self.strides()[-1]:
            raise UserError(f"resolution {self.resolution} must be a multiple of the deepest head's stride "
                            f"({self.strides()[-1]})")
        if self.anchors is not None:
            self.anchors = tuple(tuple(tuple(map(float, a)) for a in head) for head in self.anchors)
            if len(self.anchors) != len(self.taps) or any(len(h) != self.num_anchors for h in self.anchors):
                raise UserError(f"anchors need {self.num_anchors} (w, h) pairs for each of the {len(self.taps)} heads")

    @property
    def resolution(self) -> int:
        """Input side in pixels."""
        return int(self.backbone["resolution"])

    @property
    def outputs_per_anchor(self) -> int:
        """tx, ty, tw, th, objectness and one logit per class."""
        return 5 + len(self.classes)

    def trunk(self) -> zoo.MBConvConfig:
        """The backbone cut after the last tapped stage, without head conv or classifier."""
        d = dict(self.backbone, stages=self.backbone["stages"][:self.taps[-1] + 1], head=None, num_classes=1)
        return zoo.MBConvConfig.from_dict(d)

    def tap_blocks(self) -> list[int]:
        """Index of the last block of every tapped stage."""
        ends = np.cumsum([s["depth"] for s in self.backbone["stages"]]) - 1
        return [int(ends[t]) for t in self.taps]

    def strides(self) -> list[int]:
        """Input pixels per head cell."""
        s = np.cumprod([s["stride"] for s in self.backbone["stages"]]) * 2
        return [int(s[t]) for t in self.taps]

    def with_resolution(self, resolution: int) -> "DetectorConfig":
        """The same detector at another input resolution (anchors are fractions: unchanged)."""
        return replace(self, backbone=dict(self.backbone, resolution=resolution))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for checkpoints."""
        return asdict(self)


def config(backbone: str = "mbv2", width: float = 0.35, resolution: int = 128, taps: tuple[int, ...] = (2, 4),
           mbconv: str | Path | None = None, anchors: Anchors | None = None) -> DetectorConfig:
    """A detector config from a zoo MBConv model ('mbv2', 'mcunet') or an MBConv JSON (`mbconv`,
    e.g. a NAS result); the default taps are MobileNetV2's stride-8 and stride-16 stages."""
    cfg = zoo.get(backbone, width, resolution, 1, mbconv)
    if not isinstance(cfg, zoo.MBConvConfig):
        raise UserError(f"the detector needs an MBConv backbone ('mbv2', 'mcunet' or an MBConv JSON), not '{backbone}'")
    return DetectorConfig(cfg.to_dict(), tuple(taps), anchors)


def module(cfg: DetectorConfig):
    """The torch detector: the zoo trunk's stem and blocks, a top-down path and one head per tap;
    forward returns the raw head maps (N, A*(5+C), H, W), finest first.

    The top-down path is FPN's (Lin et al. 2017, section 3; YOLOv3 section 2.3 does the same with a
    concatenation): each deeper tapped map, projected to the finer map's width by a 1x1 conv and
    upsampled (nearest), is added to the finer map, so the fine heads that find small objects also
    see the deep features' context (on the synthetic scenes, whether a head disc sits on a body).
    """
    import torch.nn as nn
    trunk = cfg.trunk().module()
    widths = [cfg.trunk().channels()[1][t] for t in cfg.taps]
    strides, n_out = cfg.strides(), cfg.num_anchors * cfg.outputs_per_anchor

    def head(c: int) -> nn.Module:
        pred = nn.Conv2d(c, n_out, 1)
        nn.init.normal_(pred.weight, std=0.01)
        bias = pred.bias.data.view(cfg.num_anchors, cfg.outputs_per_anchor)
        bias.zero_()
        bias[:, 4] = math.log(OBJ_PRIOR / (1 - OBJ_PRIOR))
        return nn.Sequential(zoo.conv_bn_act(c, c, 3, groups=c), pred)

    class Detector(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem, self.blocks = trunk.stem, trunk.blocks
            self.taps = cfg.tap_blocks()
            self.reduce = nn.ModuleList(zoo.conv_bn_act(widths[k + 1], widths[k], 1, act=None)
                                        for k in range(len(widths) - 1))
            self.up = nn.ModuleList(nn.Upsample(scale_factor=strides[k + 1] // strides[k])
                                    if strides[k + 1] > strides[k] else nn.Identity() for k in range(len(widths) - 1))
            self.heads = nn.ModuleList(head(c) for c in widths)

        def forward(self, x):
            x = self.stem(x)
            feats = []
            for i, block in enumerate(self.blocks):
                x = block(x)
                if i in self.taps:
                    feats.append(x)
            outs = [self.heads[-1](feats[-1])]
            p = feats[-1]
            for k in reversed(range(len(feats) - 1)):
                p = feats[k] + self.up[k](self.reduce[k](p))
                outs.insert(0, self.heads[k](p))
            return tuple(outs)

    return Detector()


def graph(model, cfg: DetectorConfig) -> Graph:
    """The detector as a Graph (BatchNorm folded): conv ops only, one raw output per head."""
    from .from_torch import from_torch
    g = from_torch(model.eval(), cfg.resolution, name="detector")
    g.meta.update(_graph_meta(cfg))
    return g


def _graph_meta(cfg: DetectorConfig) -> dict:
    """What a detector graph says about itself (its name in reports and generated C)."""
    return {"model": f"det-{cfg.backbone['model']}-w{cfg.backbone['width']}-r{cfg.resolution}",
            "width": cfg.backbone["width"]}


# --------------------------------------------------------------------------------- anchors
def wh_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(N, K) IoU of boxes and anchors placed on the same centre: only their shapes count."""
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    return inter / (wh[:, None].prod(-1) + anchors[None].prod(-1) - inter)


def kmeans_anchors(wh: np.ndarray, k: int, iters: int = 100) -> np.ndarray:
    """YOLOv2 dimension clusters: k (w, h) centroids under the distance 1 - IoU, sorted by area.

    Starts from boxes at evenly spaced area quantiles (deterministic); each centroid is the median
    of its cluster (robust to the few huge boxes cut by nothing)."""
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    if len(wh) < k:
        raise UserError(f"{len(wh)} training boxes cannot make {k} anchors; use more training images")
    order = np.argsort(wh.prod(1))
    c = wh[order[((np.arange(k) + 0.5) / k * len(wh)).astype(int)]]
    assign = None
    for _ in range(iters):
        new = wh_iou(wh, c).argmax(1)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        c = np.array([np.median(wh[assign == j], 0) if np.any(assign == j) else c[j] for j in range(k)])
    return c[np.argsort(c.prod(1))]


def fit_anchors(cfg: DetectorConfig, ds: BoxSet) -> DetectorConfig:
    """`cfg` with anchors clustered from `ds`'s boxes (fractions of the input): the smallest
    anchors go to the finest head."""
    wh = np.concatenate([ds.to_input(i, ds.boxes[i][~ds.ignore[i]]) for i in range(len(ds))]).reshape(-1, 4)
    wh = (wh[:, 2:] - wh[:, :2]) / ds.resolution
    c = kmeans_anchors(wh[(wh > 0).all(1)], cfg.num_anchors * len(cfg.taps))
    return replace(cfg, anchors=tuple(tuple(map(tuple, c[i:i + cfg.num_anchors]))
                                      for i in range(0, len(c), cfg.num_anchors)))


def _anchors(cfg: DetectorConfig) -> np.ndarray:
    if cfg.anchors is None:
        raise UserError("the detector has no anchors yet: fit them on training boxes (detect.fit_anchors)")
    return np.asarray(cfg.anchors, np.float64)


# --------------------------------------------------------------------------------- loss
def _cells(y, cfg: DetectorConfig):
    """Raw head map (N, A*(5+C), H, W) -> (N, H, W, A, 5+C)."""
    n, _, h, w = y.shape
    return y.permute(0, 2, 3, 1).reshape(n, h, w, cfg.num_anchors, cfg.outputs_per_anchor)


def _pred_boxes(p, anchors):
    """Decoded (N, H, W, A, 4) xyxy boxes as fractions of the input, from cells `p` (torch)."""
    import torch
    _, h, w, _, _ = p.shape
    gy, gx = torch.meshgrid(torch.arange(h, dtype=p.dtype), torch.arange(w, dtype=p.dtype), indexing="ij")
    cx = (gx[None, :, :, None] + torch.sigmoid(p[..., 0])) / w
    cy = (gy[None, :, :, None] + torch.sigmoid(p[..., 1])) / h
    bw = anchors[:, 0] * torch.exp(p[..., 2].clamp(max=MAX_LOG_WH))
    bh = anchors[:, 1] * torch.exp(p[..., 3].clamp(max=MAX_LOG_WH))
    return torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)


def loss(outputs, boxes: list, labels: list, cfg: DetectorConfig, ignore_iou: float = 0.5):
    """YOLOv3 loss summed over heads and averaged over images: (total, {part: value}).

    Every ground-truth box is the target of the one anchor (over all heads) whose shape fits it
    best, in the cell holding its centre: binary cross-entropy on the centre offsets, squared
    error on log(size / anchor) (both weighted 2 - w*h, for small boxes), and on the class
    logits; objectness is binary cross-entropy everywhere, except at predictions overlapping a
    ground-truth box by IoU > `ignore_iou` that are no target (neither object nor background).
    `boxes` are xyxy in input pixels, `labels` class indices, one tensor per image. Targets are
    built on the CPU and moved to the outputs' device.
    """
    import torch
    import torch.nn.functional as F
    res, dev = float(cfg.resolution), outputs[0].device
    anchors = torch.as_tensor(_anchors(cfg), dtype=torch.float32)           # (S, A, 2)
    n = outputs[0].shape[0]
    gt = torch.cat([torch.cat([torch.full((len(b), 1), float(k)), labels[k][:, None].float(), b / res], 1)
                    for k, b in enumerate(boxes)]) if boxes else torch.zeros(0, 6)
    wh = (gt[:, 4:6] - gt[:, 2:4]).clamp(min=1e-6)
    best = torch.from_numpy(wh_iou(wh.numpy().astype(np.float64), anchors.reshape(-1, 2).numpy())).argmax(1) \
        if len(gt) else torch.zeros(0, dtype=torch.long)
    parts = {k: torch.zeros((), device=dev) for k in ("box", "obj", "cls")}
    for s, y in enumerate(outputs):
        p = _cells(y, cfg)
        _, h, w, a_n, _ = p.shape
        pred = _pred_boxes(p.detach().cpu(), anchors[s])
        ignore = torch.zeros(p.shape[:4], dtype=torch.bool)
        for k, b in enumerate(boxes):
            if len(b):
                best_iou = iou(pred[k].reshape(-1, 4).numpy(), (b / res).numpy()).max(1)
                ignore[k] = torch.from_numpy(best_iou > ignore_iou).reshape(h, w, a_n)
        mine = (best // a_n) == s
        g, a = gt[mine], best[mine] % a_n
        cx, cy = (g[:, 2] + g[:, 4]) / 2, (g[:, 3] + g[:, 5]) / 2
        gw, gh = g[:, 4] - g[:, 2], g[:, 5] - g[:, 3]
        gi, gj = (cx * w).long().clamp(0, w - 1), (cy * h).long().clamp(0, h - 1)
        b_i = g[:, 0].long()
        obj_t = torch.zeros(p.shape[:4])
        obj_t[b_i, gj, gi, a] = 1.0
        weight = (~ignore | (obj_t > 0)).float().to(dev)
        parts["obj"] = parts["obj"] + (F.binary_cross_entropy_with_logits(p[..., 4], obj_t.to(dev), reduction="none")
                                       * weight).sum()
        if len(g):
            q = p[b_i.to(dev), gj.to(dev), gi.to(dev), a.to(dev)]
            scale = (2.0 - gw * gh).to(dev)
            xy_t = torch.stack([cx * w - gi, cy * h - gj], 1).to(dev)
            wh_t = torch.log(torch.stack([gw, gh], 1).clamp(min=1e-6) / anchors[s][a]).to(dev)
            parts["box"] = parts["box"] + (scale[:, None] * (
                F.binary_cross_entropy_with_logits(q[:, :2], xy_t, reduction="none")
                + 0.5 * (q[:, 2:4] - wh_t) ** 2)).sum()
            cls_t = F.one_hot(g[:, 1].long(), len(cfg.classes)).float().to(dev)
            parts["cls"] = parts["cls"] + F.binary_cross_entropy_with_logits(q[:, 5:], cls_t, reduction="sum")
    parts = {k: v / n for k, v in parts.items()}
    return sum(parts.values()), {k: float(v.detach()) for k, v in parts.items()}


# --------------------------------------------------------------------------------- decoding
def decode(outputs: list[np.ndarray], cfg: DetectorConfig, score_threshold: float = 0.05,
           iou_threshold: float = 0.45, max_det: int = 100, pre_nms: int = 2000) -> list[Detections]:
    """Raw NHWC head maps (float: the graph's outputs, dequantized) -> detections per image, in
    input pixels: YOLOv3 boxes, score = objectness x class probability (each class on its own),
    then per-class NMS over the `pre_nms` best candidates (bounding NMS's pairwise IoU memory at
    low thresholds) keeping the `max_det` best."""
    import torch
    anchors = torch.as_tensor(_anchors(cfg))
    per_image: list[list] = [[] for _ in range(len(outputs[0]))]
    for s, y in enumerate(outputs):
        n, h, w, _ = y.shape
        p = torch.as_tensor(np.asarray(y, np.float64)).reshape(n, h, w, cfg.num_anchors, cfg.outputs_per_anchor)
        xyxy = (_pred_boxes(p, anchors[s]) * cfg.resolution).numpy()
        scores = (torch.sigmoid(p[..., 4:5]) * torch.sigmoid(p[..., 5:])).numpy()      # (N, H, W, A, C)
        for k in range(n):
            idx = np.nonzero(scores[k] > score_threshold)
            per_image[k].append((xyxy[k][idx[:3]], scores[k][idx], idx[3]))
    out = []
    for parts in per_image:
        b = np.concatenate([q[0] for q in parts]).reshape(-1, 4)
        sc, lab = np.concatenate([q[1] for q in parts]), np.concatenate([q[2] for q in parts]).astype(np.int64)
        top = np.argsort(-sc, kind="stable")[:pre_nms]
        b, sc, lab = b[top], sc[top], lab[top]
        keep = nms(b, sc, lab, iou_threshold, max_det)
        out.append(Detections(b[keep], sc[keep], lab[keep]))
    return out


def head_outputs(model, x) -> list[np.ndarray]:
    """Run the torch detector on a (N, 3, R, R) batch: raw head maps as NHWC numpy (the graph's layout)."""
    import torch

    from .train import device_of
    with torch.no_grad():
        return [y.permute(0, 2, 3, 1).cpu().numpy() for y in model(x.to(device_of(model)))]


# --------------------------------------------------------------------------------- training
def _flip(x, boxes: list, res: int, flip):
    """Mirror the images and boxes where `flip` is set (random horizontal flips)."""
    import torch
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    out = []
    for b, f in zip(boxes, flip.tolist()):
        out.append(torch.stack([res - b[:, 2], b[:, 1], res - b[:, 0], b[:, 3]], 1) if f and len(b) else b)
    return x, out


def fit(model, cfg: DetectorConfig, train_ds: BoxSet, epochs: int = 10, batch_size: int = 32, lr: float = 3e-3,
        weight_decay: float = 1e-4, warmup: int = 100, seed: int = 0, progress: bool = True,
        device: str = "cpu", checkpoint: str | Path | None = None, resume: bool = False) -> list[dict]:
    """Train in place (moved to `device`, see `train.pick_device`) with AdamW, `warmup` steps of
    linear warm-up then a cosine schedule, random horizontal flips and the detection `loss`; one
    record (loss parts, seconds) per epoch. Checkpoints and exact resume as `train.run_epochs`."""
    import torch
    from torch.utils.data import DataLoader

    from .train import cosine_schedule, pick_device, run_epochs, seed_everything
    if epochs < 1 or batch_size < 1:
        raise UserError(f"epochs and batch size must be >= 1, got {epochs} and {batch_size}")
    dev = pick_device(device)
    seed_everything(seed)
    model = model.to(dev, memory_format=torch.channels_last).train()
    order = torch.Generator().manual_seed(seed)
    loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, collate_fn=collate, generator=order)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = cosine_schedule(opt, epochs * len(loader), warmup)
    flips = torch.Generator().manual_seed(seed + 1)

    def step(batch, epoch: int) -> dict[str, float]:
        x, boxes, labels = batch
        x, boxes = _flip(x, boxes, cfg.resolution, torch.rand(len(x), generator=flips) < 0.5)
        total, parts = loss(model(x.to(dev).contiguous(memory_format=torch.channels_last)), boxes, labels, cfg)
        total.backward()
        return {**{f"loss_{k}": v * len(x) for k, v in parts.items()}, "n": len(x)}

    def summarise(epoch: int, sums: dict[str, float], seconds: float) -> dict:
        parts = {k: v / sums["n"] for k, v in sums.items() if k != "n"}
        return {"epoch": epoch + 1, **parts, "seconds": seconds, "loss": sum(parts.values())}

    run = {"epochs": epochs, "seed": seed, "batch_size": batch_size, "n_train": len(train_ds)}
    history = run_epochs(model, loader, opt, sched, epochs, step, summarise, run, [order, flips], checkpoint,
                         resume, progress=progress)
    model.cpu()  # back where export, quantization and the int8 tools read the weights
    return history


def detections(model, cfg: DetectorConfig, ds: BoxSet, batch_size: int = 64, score_threshold: float = 0.01,
               run=None) -> list[Detections]:
    """Detections on every image of `ds`, in each image's own pixels. `run(x)` maps a float NCHW
    batch to raw NHWC head maps (default: the torch model; e.g. the int8 graph instead)."""
    import torch
    run = run or (lambda x: head_outputs(model, x))
    model.eval()
    out = []
    for i in range(0, len(ds), batch_size):
        idx = range(i, min(i + batch_size, len(ds)))
        x = torch.stack([ds[k][0] for k in idx])
        for k, d in zip(idx, decode(run(x), cfg, score_threshold)):
            out.append(Detections(ds.from_input(k, d.boxes), d.scores, d.labels))
    return out


def evaluate(model, cfg: DetectorConfig, ds: BoxSet, batch_size: int = 64, run=None) -> dict:
    """AP@0.5 (VOC all-point) per class, overall and on small objects, of `model` on `ds` (only
    the classes `ds` annotates)."""
    dets = detections(model, cfg, ds, batch_size, run=run)
    classes = {CLASSES.index(c): c for c in ds.classes if c in cfg.classes}
    return evaluate_boxes(dets, [ds.truth(i) for i in range(len(ds))], classes)


# --------------------------------------------------------------------------------- int8
def quantized(model, cfg: DetectorConfig, images: np.ndarray, percentile: float | None = None) -> Graph:
    """The detector as an int8 Graph (TFLite arithmetic), calibrated on float NHWC `images`
    normalised as training normalises them, so its int8 input is exactly uint8 - 128."""
    from . import quant
    return quant.from_module(model, cfg.resolution, images, "detector", percentile, meta=_graph_meta(cfg))[1]


def int8_runner(q: Graph, plan=None):
    """`run(x)` for `detections`: a float NCHW batch through int8 graph `q` (layer by layer, or
    patch by patch with a `patch.PatchPlan`), head maps dequantized to float NHWC."""
    from . import int8ref, patch, quant

    def run(x) -> list[np.ndarray]:
        xq = quant.quantize_input(q, x.permute(0, 2, 3, 1).numpy())
        ys = patch.run_int8(plan, xq) if plan is not None else int8ref.run_all(q, xq)
        return [quant.dequantize_output(q, y, k) for k, y in enumerate(ys)]
    return run


# --------------------------------------------------------------------------------- checkpoints
def save(path: str | Path, model, cfg: DetectorConfig, meta: dict[str, Any]) -> None:
    """Weights, config and metadata in one file (written atomically)."""
    import torch

    from .safeio import write_atomic
    write_atomic(path, lambda tmp: torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "meta": meta}, tmp))


def load(path: str | Path):
    """(model in eval mode, config, metadata) from a file written by `save` / `detect train --out`."""
    import torch
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        cfg = DetectorConfig(**ck["config"])
        model = module(cfg)
        model.load_state_dict(ck["model"])
    except (OSError, KeyError, RuntimeError, TypeError) as e:
        raise UserError(f"cannot load detector checkpoint '{path}': {e}; expected a file written by "
                        "`mcunet-lite detect train --out`") from None
    return model.eval(), cfg, ck["meta"]


def train(resolution: int = 128, backbone: str = "mbv2", width: float = 0.35, epochs: int = 10,
          batch_size: int = 32, lr: float = 3e-3, n_train: int = 4000, n_val: int = 500, seed: int = 0,
          difficulty: float = 0.5, data: str = "synthetic", val_data: str | None = None, images: str | None = None,
          mbconv: str | None = None, out: str | Path | None = None, progress: bool = True,
          device: str = "cpu", resume: bool = False) -> dict[str, Any]:
    """Build, train and evaluate a detector: the entry point of `detect train`. Anchors are
    clustered from the training boxes; returns the final figures (AP, seconds, history).

    With `out`, training state is kept after every epoch in `resume_path(out)` (removed once `out`
    is written); with `resume` too, an interrupted run continues from it."""
    import torch

    from . import detdata
    from .train import resume_path
    cfg = config(backbone, width, resolution, mbconv=mbconv)
    train_ds = detdata.load(data, "train", resolution, images, n_train, seed, difficulty, progress)
    val_ds = detdata.load(val_data or data, "val", resolution, images, n_val, seed, difficulty, progress)
    cfg = fit_anchors(cfg, train_ds)
    torch.manual_seed(seed)
    model = module(cfg)
    partial = resume_path(out) if out is not None else None
    history = fit(model, cfg, train_ds, epochs, batch_size, lr, seed=seed, progress=progress, device=device,
                  checkpoint=partial, resume=resume)
    seconds = sum(h["seconds"] for h in history)  # over every session of a resumed run
    ap = evaluate(model, cfg, val_ds)
    meta = {"data": str(data), "n_train": len(train_ds), "n_val": len(val_ds), "seed": seed, "difficulty": difficulty,
            "epochs": epochs, "train_seconds": seconds, "history": history, "val": ap}
    if out is not None:
        save(out, model, cfg, meta)
        partial.unlink(missing_ok=True)
    return {"resolution": resolution, "backbone": cfg.backbone["model"], "width": cfg.backbone["width"],
            "anchors": cfg.anchors, **meta}


# --------------------------------------------------------------------------------- photos
def predict(model, cfg: DetectorConfig, image: np.ndarray, score_threshold: float = 0.3) -> Detections:
    """Detections on one (h, w, 3) uint8 photo of any size, in its pixels (letterboxed in)."""
    from .data import to_tensor
    d = decode(head_outputs(model.eval(), to_tensor(letterbox(image, cfg.resolution))[None]), cfg, score_threshold)[0]
    return Detections(letterbox_boxes(d.boxes, image.shape[:2], cfg.resolution, inverse=True), d.scores, d.labels)


PHOTOS = {"astronaut": "scikit-image's data.astronaut()", "grace_hopper": "matplotlib's sample grace_hopper.jpg"}


def photo(source: str | Path) -> np.ndarray:
    """An RGB uint8 photo: an image file, or a sample photo that ships inside an installed package
    ('astronaut', 'grace_hopper'); nothing is downloaded."""
    from PIL import Image
    if str(source) == "astronaut":
        try:
            from skimage import data as skdata
        except ImportError:
            raise UserError("'astronaut' comes with scikit-image: pip install scikit-image, or give an image file") \
                from None
        return skdata.astronaut()
    if str(source) == "grace_hopper":
        from matplotlib import cbook
        with cbook.get_sample_data("grace_hopper.jpg") as f, Image.open(f) as im:
            return np.asarray(im.convert("RGB"))
    try:
        with Image.open(source) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise UserError(f"cannot read image '{source}': {e}; give an image file or one of "
                        f"{', '.join(PHOTOS)}") from None


COLOURS = {"person": (230, 60, 40), "face": (40, 200, 80)}


def draw(image: np.ndarray, dets: Detections, classes: tuple[str, ...] = CLASSES):
    """The photo with its detections drawn (box, class and score): a PIL image."""
    from PIL import Image, ImageDraw
    im = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    d = ImageDraw.Draw(im)
    lw = max(1, round(max(im.size) / 200))
    for b, s, c in zip(dets.boxes, dets.scores, dets.labels):
        colour = COLOURS.get(classes[c], (255, 255, 0))
        d.rectangle([float(v) for v in b], outline=colour, width=lw)
        d.text((float(b[0]) + lw, float(b[1]) + lw), f"{classes[c]} {s:.2f}", fill=colour)
    return im
