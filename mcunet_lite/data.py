"""Visual Wake Words data: the real formats, the two label rules, and an offline synthetic stand-in.

VWW (Chowdhery et al. 2019, arXiv 1906.05721) is person / no-person classification on COCO 2014,
the task MCUNet (section 4) reports. Real VWW comes in three layouts that follow two label rules:

- `pyvww`: COCO-style `instances_train.json` / `instances_val.json` (categories 0 not-person,
  1 person) over a folder of COCO 2014 images; person if any person segmentation area exceeds 0.5%
  of the image (TF-slim / pyvww, the rule the MCUNet papers use).
- `mlperf`: MLPerf Tiny's `vw_coco2014_96/{person,non_person}`: 96x96 images, person if a
  non-crowd person bounding box exceeds 2.5% of the image, images with only smaller people dropped.
- `vww01`: MLPerf Tiny's evaluation set: raw 96x96x3 uint8 `.bin` files listed in `y_labels.csv`.

`load` detects the layout and reports its rule; it never guesses. The synthetic stand-in renders
procedural scenes (people, hard negatives, clutter) at any resolution from one scene description
and labels them by the VWW visible-area rule; it can write every layout so the same loaders read it.
"""
from __future__ import annotations

import colorsys
import json
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .errors import UserError

# ------------------------------------------------------------------------------- label rules
PYVWW_AREA = 0.005   # pyvww / TF-slim: person segmentation area / image area > 0.5%
MLPERF_BOX = 0.025   # MLPerf Tiny: non-crowd person bounding box / image area > 2.5%
RULES = {
    "pyvww": "person if any person segmentation area > 0.5% of the image (pyvww / TF-slim, MCUNet papers)",
    "mlperf": "person if any non-crowd person bounding box > 2.5% of the image; images with only smaller "
              "people dropped (MLPerf Tiny vw_coco2014_96)",
}


def pyvww_label(anns: list[dict], height: int, width: int, person: int = 1) -> int:
    """1 if any person annotation's area / image area > 0.5% (strictly), else 0; crowds count.

    The rule of the TF-slim VWW builder and pyvww (Chowdhery et al. 2019, section 3), which the
    MCUNet papers use. `person` is the person category id (1 in COCO).
    """
    return int(any(a["category_id"] == person and a["area"] / (height * width) > PYVWW_AREA for a in anns))


def mlperf_label(anns: list[dict], height: int, width: int, person: int = 1) -> int:
    """1 if a non-crowd person box > 2.5% of the image; 0 if no person at all; -1 (drop) otherwise.

    The MLPerf Tiny vw_coco2014_96 rule: images whose only people are small or crowds are dropped.
    """
    people = [a for a in anns if a["category_id"] == person]
    if any(not a.get("iscrowd", 0) and a["bbox"][2] * a["bbox"][3] / (height * width) > MLPERF_BOX for a in people):
        return 1
    return -1 if people else 0


# ------------------------------------------------------------------------- synthetic stand-in
# Scenes live in normalised coordinates (0..1 across the image), so one scene renders at any
# resolution. A shape is (object id, kind, points, radius, colour); kinds: "chain" (a capsule
# polyline: limbs, trunks, poles), "disc" (one point + radius) and "poly" (a filled polygon).
LABEL_RES = 96        # the label is measured on a 96x96 object-id buffer, whatever the render size
SUPERSAMPLE = 2       # shapes are drawn at 2x and box-filtered down, as a camera integrates light
THICK = 1.4           # limb / body thickness factor of every figure (chunky enough for stride-2 stems)
VERSION = 9           # bump when the generator changes: cached sets of older versions are ignored

Shape = tuple[int, str, tuple[float, ...], float, tuple[int, int, int]]
SKIN = [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 34)]
HAIR = [(20, 18, 16), (60, 40, 25), (110, 70, 30), (200, 170, 90), (150, 150, 150), (170, 60, 25)]
POSES = {  # (upper arm, forearm, thigh, shin) angles in degrees from straight down, per side
    "stand": ((12, 4, 4, 0), (12, 4, 4, 0)),
    "walk": ((-25, -15, -22, 10), (25, 20, 20, 5)),
    "run": ((-50, -70, -45, 60), (45, 80, 35, 5)),
    "arms_up": ((160, 5, 6, 0), (160, 5, 6, 0)),
    "wave": ((10, 5, 5, 0), (130, 40, 5, 0)),
    "sit": ((20, 30, 85, -85), (20, 30, 85, -85)),
    "reach": ((90, 0, 10, 0), (40, 20, 10, 0)),
}


@dataclass
class Scene:
    """One synthetic image as a resolution-free description: background, shapes, camera jitter."""

    background: tuple           # (colour a, colour b, gradient angle, noise grids, noise amplitude)
    shapes: list[Shape]         # painter's order: later shapes occlude earlier ones
    people: frozenset[int]      # object ids that are persons
    gain: tuple[float, float, float]
    bias: float
    noise: float                # sensor noise sigma, 0..255 units
    blur: float                 # defocus radius as a fraction of the image width
    seed: int                   # seeds the per-pixel sensor noise


def _colour(rnd: random.Random, skin: float = 0.0, sat: float = 0.7) -> tuple[int, int, int]:
    """A random photo-like colour (saturation up to `sat`, no extremes of brightness); with
    probability `skin` a jittered skin tone (shared by every figure kind)."""
    if rnd.random() < skin:
        c = rnd.choice(SKIN)
        return tuple(min(255, max(0, v + rnd.randint(-18, 18))) for v in c)
    h, s, v = rnd.random(), sat * rnd.random() ** 1.5, 0.25 + 0.65 * rnd.random()
    return tuple(int(255 * c) for c in colorsys.hsv_to_rgb(h, s, v))


def _limb(x: float, y: float, a1: float, a2: float, l1: float, l2: float) -> tuple[float, ...]:
    """Two-segment limb from (x, y): angles in degrees from straight down (local y points down)."""
    r1, r2 = math.radians(a1), math.radians(a1 + a2)
    x1, y1 = x + l1 * math.sin(r1), y + l1 * math.cos(r1)
    return (x, y, x1, y1, x1 + l2 * math.sin(r2), y1 + l2 * math.cos(r2))


# Every figure is made of the same parts with the same sizes and colours (a head disc, a torso
# capsule, two two-segment arms and two two-segment legs), so area, colour and edge counts match
# across classes and only the arrangement of the parts says "person" (DESIGN.md section 7).
HEAD, TORSO, ARM, LEG = 0.10, (0.28, 0.075), (0.16, 0.15, 0.032), (0.23, 0.22, 0.045)
EYE, EYE_GAP = 0.34, 0.45   # eye radius and eye offset from the head's centre, in head radii:
#   an eye is about 3 pixels across at 64 px and 1.5 at 32 px (blurred away), so the face that
#   separates people from the look-alike negatives is what the higher resolution adds
FIGURE = (0.4, 1.0)         # the usual figure height, as a fraction of the image (log-uniform)


def _colours(rnd: random.Random) -> tuple:
    """(head, top, bottom) colours of one figure; heads are skin tones 75% of the time, for every kind."""
    return _colour(rnd, 0.75), _colour(rnd), _colour(rnd)


def _hair(rnd: random.Random) -> tuple[int, int, int]:
    """A hair colour: a person's cap of hair, or the same-sized spot that every other figure carries."""
    return tuple(min(255, max(0, v + rnd.randint(-12, 12))) for v in rnd.choice(HAIR))


def _eyes(x: float, y: float, head: tuple[int, int, int]) -> list[tuple]:
    """Two dark eye discs, a darker shade of the head colour, centred on (x, y)."""
    dark = tuple(int(0.25 * v) for v in head)
    return [("disc", (x + dx * HEAD, y), EYE * HEAD, dark) for dx in (-EYE_GAP, EYE_GAP)]


def _spot(rnd: random.Random, parts: list[tuple], head: tuple[int, int, int]) -> list[tuple]:
    """Add a hair-coloured disc of a hair cap's size and a pair of eyes on random parts (not the
    head): the same colours and areas as a person's face, so only their arrangement on a head
    marks a face (colour histograms cannot tell the classes apart)."""
    chains = [p for p in parts if p[0] == "chain"]
    for make in (lambda x, y: [("disc", (x, y), 0.75 * HEAD, _hair(rnd))], lambda x, y: _eyes(x, y, head)):
        _, pts, _, _ = rnd.choice(chains)
        k = 2 * rnd.randrange(len(pts) // 2)
        parts = parts + make(pts[k], pts[k + 1])
    return parts


def _person(rnd: random.Random, d: float) -> list[tuple]:
    """Articulated capsule person in a random pose; local units: height about 1, hips at the origin."""
    head, top, bottom = _colours(rnd)
    pose = POSES[rnd.choice(list(POSES))]
    jit = lambda a: a + rnd.gauss(0, 8 + 10 * d)  # noqa: E731
    parts = [("chain", (0, -0.02, 0, -0.02 - TORSO[0]), TORSO[1], top)]
    for side, (ua, fa, th, sh) in zip((-1, 1), pose):
        parts.append(("chain", _limb(0.045 * side, 0.0, side * jit(th), side * jit(sh), *LEG[:2]), LEG[2], bottom))
        parts.append(("chain", _limb(0.07 * side, -0.29, side * jit(ua), side * jit(fa), *ARM[:2]), ARM[2], top))
    hx = rnd.gauss(0, 0.01)
    parts.append(("disc", (hx, -0.42), HEAD, head))
    parts.append(("disc", (hx, -0.42 - 0.35 * HEAD), 0.75 * HEAD, _hair(rnd)))
    return parts + _eyes(hx, -0.42 + 0.15 * HEAD, head)


def _animal(rnd: random.Random, d: float) -> list[tuple]:
    """Four-legged animal: the torso lies horizontal, arms and legs stand under it, head in front."""
    head, top, bottom = _colours(rnd)
    half = TORSO[0] / 2
    parts = [("chain", (-half, -0.2, half, -0.2 + rnd.gauss(0, 0.03)), TORSO[1], top)]
    for x, (l1, l2, r), c in ((-half, LEG, bottom), (-half + 0.05, LEG, bottom), (half - 0.05, ARM, top), (half, ARM, top)):
        parts.append(("chain", _limb(x, -0.2, rnd.gauss(0, 15), rnd.gauss(0, 20), l1, l2), r, c))
    parts.append(("disc", (half + 0.1, -0.3 - rnd.uniform(0, 0.1)), HEAD, head))
    return _spot(rnd, parts, head)


def _snake(rnd: random.Random, d: float) -> list[tuple]:
    """Snake: the torso and every limb joined end to end in one winding chain, head first."""
    head, top, bottom = _colours(rnd)
    x, y, a = 0.0, -0.3, rnd.uniform(0, 360)
    parts = [("disc", (x, y), HEAD, head)]
    for length, r, c in ((TORSO[0], TORSO[1], top), (ARM[0] + ARM[1], ARM[2], top), (LEG[0] + LEG[1], LEG[2], bottom),
                         (ARM[0] + ARM[1], ARM[2], top), (LEG[0] + LEG[1], LEG[2], bottom)):
        a += rnd.gauss(0, 45)
        x1, y1 = x + length * math.sin(math.radians(a)), y + length * math.cos(math.radians(a))
        parts.append(("chain", (x, y, x1, y1), r, c))
        x, y = x1, y1
    return _spot(rnd, parts, head)


def _fence(rnd: random.Random, d: float) -> list[tuple]:
    """A fence: torso, arms and legs stand side by side as upright posts, the head on one post."""
    head, top, bottom = _colours(rnd)
    parts, x = [], -0.2
    for length, r, c in ((TORSO[0], TORSO[1], top), (LEG[0] + LEG[1], LEG[2], bottom), (ARM[0] + ARM[1], ARM[2], top),
                         (LEG[0] + LEG[1], LEG[2], bottom), (ARM[0] + ARM[1], ARM[2], top)):
        y0 = 0.2 + rnd.gauss(0, 0.05)
        parts.append(("chain", (x, y0, x + rnd.gauss(0, 0.03), y0 - length), r, c))
        x += 2 * r + rnd.uniform(0.01, 0.06)
    post = rnd.choice(parts)[1]
    parts.append(("disc", (post[2], post[3] - HEAD), HEAD, head))
    return _spot(rnd, parts, head)


def _scrambled(rnd: random.Random, d: float) -> list[tuple]:
    """A person's parts in the wrong places: every part moved and turned at random."""
    out = []
    for kind, pts, r, c in _person(rnd, d):
        dx, dy, a = rnd.uniform(-0.3, 0.3), rnd.uniform(-0.4, 0.4), rnd.uniform(0, 2 * math.pi)
        ca, sa = math.cos(a), math.sin(a)
        x0, y0 = pts[0], pts[1]
        moved = []
        for x, y in zip(pts[0::2], pts[1::2]):
            x, y = x - x0, y - y0
            moved += [x0 + dx + ca * x - sa * y, y0 + dy + sa * x + ca * y]
        out.append((kind, tuple(moved), r, c))
    return out


NEGATIVES = {"animal": _animal, "snake": _snake, "fence": _fence, "scrambled": _scrambled}


def _place(parts: list[tuple], cx: float, cy: float, size: float, angle: float, flip: bool) -> list[tuple]:
    """Local figure parts -> image coordinates: scale by `size`, rotate by `angle`, translate."""
    ca, sa, fx = math.cos(angle), math.sin(angle), -1.0 if flip else 1.0
    placed = []
    for kind, pts, r, c in parts:
        xy = []
        for x, y in zip(pts[0::2], pts[1::2]):
            x *= fx
            xy += [cx + size * (ca * x - sa * y), cy + size * (sa * x + ca * y)]
        placed.append((kind, tuple(xy), r * size * THICK, c))
    return placed


def _clutter(rnd: random.Random, largest: float) -> list[tuple]:
    """One clutter object (box, ellipse-ish polygon, triangle, pole or blob) in image coordinates."""
    x, y, s = rnd.uniform(-0.1, 1.1), rnd.uniform(-0.1, 1.1), math.exp(rnd.uniform(math.log(0.03), math.log(largest)))
    c, kind = _colour(rnd, 0.15), rnd.choice(("box", "ellipse", "tri", "pole", "blob"))
    if kind == "pole":
        a = rnd.uniform(0, math.pi)
        return [("chain", (x, y, x + s * math.cos(a), y + s * math.sin(a)), s * rnd.uniform(0.03, 0.12), c)]
    if kind == "blob":
        return [("disc", (x + rnd.gauss(0, s / 3), y + rnd.gauss(0, s / 3)), s * rnd.uniform(0.15, 0.4), c)
                for _ in range(rnd.randint(2, 4))]
    n = {"box": 4, "ellipse": 10, "tri": 3}[kind]
    a0, asp = rnd.uniform(0, 2 * math.pi), rnd.uniform(0.3, 1.0)
    pts = []
    for k in range(n):
        t = a0 + 2 * math.pi * (k + (0.5 if kind == "box" else 0)) / n
        pts += [x + s / 2 * math.cos(t), y + s / 2 * asp * math.sin(t)]
    if kind == "box":  # rotate an axis-aligned rectangle
        pts = []
        for u, v in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            pts += [x + s / 2 * (u * math.cos(a0) - v * asp * math.sin(a0)),
                    y + s / 2 * (u * math.sin(a0) + v * asp * math.cos(a0))]
    return [("poly", tuple(pts), 0.0, c)]


def make_scene(seed: int, index: int, difficulty: float = 0.5, split: str = "train", crowd: bool = False) -> Scene:
    """Sample scene `index` of the stream (`seed`, `split`): deterministic on every machine.

    About half the scenes hold a person figure; the rest hold hard negatives built from the same
    parts, palette and size distribution (animals, snakes, fences, scrambled people), so only the
    arrangement of parts tells the classes apart. `difficulty` (0..1) scales clutter, occlusion,
    camouflage, pose jitter, small and sideways figures, border cuts and sensor noise.
    A `crowd` scene (for detection, like WIDER Face's crowds) holds 3-8 small figures (2-9% of
    the image area each at most), about half of them people, anywhere in the image.
    """
    d = min(max(difficulty, 0.0), 1.0)
    rnd = random.Random(f"{seed}:{split}:{index}")
    a, b = _colour(rnd, sat=0.4), _colour(rnd, sat=0.4)
    grids = [np.array([rnd.random() for _ in range(g * g)], np.float32).reshape(g, g) for g in (3, 5, 9)]
    background = (a, b, rnd.uniform(0, 2 * math.pi), grids, rnd.uniform(0.1, 0.3 + 0.4 * d))
    shapes: list[Shape] = []
    oid = 1
    for _ in range(rnd.randint(0, 1 + int(4 * d))):  # clutter behind the figures
        shapes += [(oid, *s) for s in _clutter(rnd, 0.5)]
        oid += 1
    if crowd:
        kinds = ["person" if rnd.random() < 0.5 else rnd.choice(list(NEGATIVES)) for _ in range(rnd.randint(3, 8))]
    else:
        has_person = rnd.random() < 0.5
        kinds = ["person" if (i == 0 and has_person) else rnd.choice(list(NEGATIVES))
                 for i in range(1 + (rnd.random() < 0.2))]
    if rnd.random() < 0.1 * d:
        kinds.append("tiny_person")
    rnd.shuffle(kinds)
    people = set()
    for kind in kinds:
        if kind == "tiny_person":
            size = rnd.uniform(0.06, 0.14)
        elif crowd:
            size = math.exp(rnd.uniform(math.log(0.1), math.log(0.45)))
        elif rnd.random() < 0.05 + 0.15 * d:
            size = math.exp(rnd.uniform(math.log(0.15), math.log(FIGURE[0])))
        else:
            size = math.exp(rnd.uniform(*map(math.log, FIGURE)))
        make = _person if kind in ("person", "tiny_person") else NEGATIVES[kind]
        angle = rnd.gauss(0, 0.15)
        if rnd.random() < 0.3 * d:
            angle += rnd.choice((-1, 1)) * math.pi / 2
        spread = 0.45 if crowd else 0.25 + 0.1 * d
        cx, cy = rnd.uniform(0.5 - spread, 0.5 + spread), rnd.uniform(0.5 - spread, 0.5 + spread)
        parts = _place(make(rnd, d), cx, cy, size, angle, rnd.random() < 0.5)
        if rnd.random() < 0.2 * d:  # camouflage: figure colours pulled toward the background
            parts = [(k, p, r, tuple(int(0.5 * u + 0.5 * v) for u, v in zip(c, a))) for k, p, r, c in parts]
        shapes += [(oid, *p) for p in parts]
        if kind in ("person", "tiny_person"):
            people.add(oid)
        oid += 1
    for _ in range(rnd.randint(0, int(2 * d))):  # clutter in front: occluders
        shapes += [(oid, *s) for s in _clutter(rnd, 0.25)]
        oid += 1
    gain = tuple(rnd.uniform(0.85, 1.15) for _ in range(3))
    return Scene(background, shapes, frozenset(people), gain, rnd.uniform(-10, 10), rnd.uniform(1, 3 + 8 * d),
                 rnd.uniform(0, 0.012) if rnd.random() < 0.3 else 0.0, rnd.getrandbits(32))


def _draw(draw: ImageDraw.ImageDraw, shape: Shape, size: int, fill) -> None:
    """Draw one shape on a `size`-pixel canvas with `fill` (a colour, or an object id)."""
    _, kind, pts, r, _ = shape
    xy = [v * size for v in pts]
    if kind == "poly":
        draw.polygon(xy, fill=fill)
        return
    rad = max(r * size, 0.5)
    if kind == "chain":
        draw.line(xy, fill=fill, width=max(1, round(2 * rad)), joint="curve")
        for x, y in ((xy[0], xy[1]), (xy[-2], xy[-1])):
            draw.ellipse((x - rad, y - rad, x + rad, y + rad), fill=fill)
    else:
        x, y = xy
        draw.ellipse((x - rad, y - rad, x + rad, y + rad), fill=fill)


def _background(bg: tuple, size: int) -> np.ndarray:
    """Gradient between two colours plus multi-octave value noise, (size, size, 3) float32."""
    a, b, angle, grids, amp = bg
    t = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    g = 0.5 + math.cos(angle) * t[None, :] + math.sin(angle) * t[:, None]
    for k, grid in enumerate(grids):
        up = np.asarray(Image.fromarray(grid, "F").resize((size, size), Image.BILINEAR))
        g = g + amp / (k + 1) * (up - 0.5)
    g = np.clip(g, 0, 1)[..., None]
    return np.asarray(a, np.float32) * (1 - g) + np.asarray(b, np.float32) * g


def render(scene: Scene, resolution: int) -> np.ndarray:
    """Render `scene` at `resolution` x `resolution`: (H, W, 3) uint8."""
    s = resolution * SUPERSAMPLE
    img = Image.fromarray(_background(scene.background, s).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for shape in scene.shapes:
        _draw(draw, shape, s, shape[4])
    img = img.reduce(SUPERSAMPLE)
    if scene.blur:
        img = img.filter(ImageFilter.GaussianBlur(scene.blur * resolution))
    x = np.asarray(img, np.float32) * np.asarray(scene.gain, np.float32) + scene.bias
    rng = np.random.default_rng([scene.seed, resolution])
    x += rng.standard_normal(x.shape, np.float32) * scene.noise
    return np.clip(x, 0, 255).astype(np.uint8)


def person_masks(scene: Scene, resolution: int = LABEL_RES) -> dict[int, np.ndarray]:
    """Visible pixels of each person (bool masks) from an object-id buffer: occlusion included."""
    if not scene.people:
        return {}
    first = min(i for i, *_ in scene.shapes if i in scene.people)
    ids = Image.new("L", (resolution, resolution), 0)
    draw = ImageDraw.Draw(ids)
    for shape in scene.shapes:
        if shape[0] >= first:
            _draw(draw, shape, resolution, shape[0] if shape[0] in scene.people else 255)
    buf = np.asarray(ids)
    return {p: buf == p for p in scene.people}


def scene_annotations(scene: Scene) -> list[dict]:
    """COCO-style person annotations of a scene, in LABEL_RES pixels: visible area and its box.

    Like a COCO segmentation, the area counts only the visible pixels (occluders and image borders
    cut it), and the box is the tight box around them.
    """
    anns = []
    for m in person_masks(scene).values():
        ys, xs = np.nonzero(m)
        if len(ys):
            box = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
            anns.append({"category_id": 1, "area": float(len(ys)), "bbox": box, "iscrowd": 0})
    return anns


def _generate(job: tuple) -> tuple[np.ndarray, np.ndarray, list[list[dict]]]:
    """Render scenes [start, stop) of a stream: (images, (pyvww, mlperf) labels, annotations)."""
    start, stop, resolution, split, seed, difficulty, crowd = job
    images = np.empty((stop - start, resolution, resolution, 3), np.uint8)
    labels, anns = np.empty((stop - start, 2), np.int8), []
    for k, i in enumerate(range(start, stop)):
        scene = make_scene(seed, i, difficulty, split, crowd)
        images[k] = render(scene, resolution)
        a = scene_annotations(scene)
        labels[k] = pyvww_label(a, LABEL_RES, LABEL_RES), mlperf_label(a, LABEL_RES, LABEL_RES)
        anns.append(a)
    return images, labels, anns


def generate(n: int, resolution: int = 64, split: str = "train", seed: int = 0, difficulty: float = 0.5,
             workers: int | None = None, progress: bool = True, crowd: bool = False) -> tuple[np.ndarray, np.ndarray, list]:
    """Render scenes 0..n-1 of a stream in parallel worker processes; same result for any `workers`.

    Returns (N, R, R, 3) uint8 images, (N, 2) labels (pyvww, mlperf) and per-image annotations.
    """
    from tqdm.auto import tqdm
    workers = workers or min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(), 8)
    chunk = 256
    jobs = [(s, min(s + chunk, n), resolution, split, seed, difficulty, crowd) for s in range(0, n, chunk)]
    bar = tqdm(total=n, desc=f"synthetic {split} {resolution}px", disable=not progress, leave=False)
    parts = []
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        with mp.get_context().Pool(min(workers, len(jobs))) as pool:
            for part in pool.imap(_generate, jobs):
                parts.append(part)
                bar.update(len(part[0]))
    else:
        for job in jobs:
            parts.append(_generate(job))
            bar.update(len(parts[-1][0]))
    bar.close()
    if not parts:
        return np.empty((0, resolution, resolution, 3), np.uint8), np.empty((0, 2), np.int8), []
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            [a for p in parts for a in p[2]])


# ---------------------------------------------------------------------------------- datasets
def to_tensor(images: np.ndarray):
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1): (x - 128) / 128.

    The same affine map as int8 input quantization with scale 1/128 and zero point 0 (int8 =
    uint8 - 128), so a quantized model sees exactly what the float model saw.
    """
    import torch
    x = torch.from_numpy(np.require(images, np.uint8, ["C", "W"])).movedim(-1, -3)
    return (x.float() - 128.0) / 128.0


MAX_IMAGE_PIXELS = 50_000_000  # larger images are refused before they are decoded (a 12k x 4k photo fits)
MAX_RESOLUTION = 2048  # synthetic scenes
MAX_SYNTH_BYTES = 16 * 2 ** 30  # pixels of one synthetic set in memory


def _open_image(path: Path):
    """Open an image file lazily (header only), refusing unreadable files and sizes that are empty or
    over `MAX_IMAGE_PIXELS` (a decompression bomb) before any pixel is decoded."""
    try:
        im = Image.open(path)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read image '{path}': {type(e).__name__}: {e}") from None
    w, h = im.size
    if not (w >= 1 and h >= 1 and w * h <= MAX_IMAGE_PIXELS):
        im.close()
        raise UserError(f"image '{path}' is {w}x{h}; images must be at least 1x1 and at most "
                        f"{MAX_IMAGE_PIXELS // 10 ** 6} megapixels")
    return im


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file, from its header."""
    with _open_image(path) as im:
        return im.size[::-1]


def _read_image(path: Path, resolution: int) -> np.ndarray:
    """An image file -> centre square crop -> `resolution` x `resolution` RGB uint8."""
    try:
        with _open_image(path) as im:
            im = im.convert("RGB")
    except (OSError, ValueError, SyntaxError) as e:  # a header that reads, with broken pixel data
        raise UserError(f"cannot read image '{path}': {type(e).__name__}: {e}") from None
    w, h = im.size
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return np.asarray(im if s == resolution else im.resize((resolution, resolution), Image.BILINEAR))


def _resize_all(images: np.ndarray, resolution: int) -> np.ndarray:
    """Resize a stack of square uint8 images (bilinear); a no-op at the same size."""
    if images.shape[1] == resolution:
        return images
    return np.stack([np.asarray(Image.fromarray(x).resize((resolution, resolution), Image.BILINEAR)) for x in images])


try:
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # pragma: no cover - torch is a dependency; this keeps `data` importable without it
    _TorchDataset = object


class VWW(_TorchDataset):
    """Person / no-person images with labels, and where they came from: `format`, label `rule`, `split`.

    Items are `(to_tensor(image), label)` for `torch.utils.data.DataLoader`; `arrays()` is the fast
    path (uint8 NHWC + labels) for quantization calibration and probes. Images live in memory
    (`pixels`) or in files read on demand (`files`).
    """

    def __init__(self, labels, resolution: int, format: str, rule: str, split: str,
                 pixels: np.ndarray | None = None, files: list[Path] | None = None,
                 annotations: list[list[dict]] | None = None, meta: dict | None = None) -> None:
        self.labels = np.asarray(labels, np.int64)
        self.resolution, self.format, self.rule, self.split = resolution, format, rule, split
        self.pixels, self.files, self.annotations, self.meta = pixels, files, annotations, meta or {}

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> np.ndarray:
        """Image `i` as (R, R, 3) uint8."""
        return self.pixels[i] if self.pixels is not None else _read_image(self.files[i], self.resolution)

    def __getitem__(self, i: int):
        return to_tensor(self.image(i)), int(self.labels[i])

    def arrays(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The first `limit` (default all) images as (N, R, R, 3) uint8, and their labels."""
        n = len(self) if limit is None else min(limit, len(self))
        if self.pixels is not None:
            return self.pixels[:n], self.labels[:n]
        return np.stack([self.image(i) for i in range(n)]) if n else \
            np.empty((0, self.resolution, self.resolution, 3), np.uint8), self.labels[:n]

    def counts(self) -> dict[str, int]:
        """Images per class."""
        return {"person": int((self.labels == 1).sum()), "non_person": int((self.labels == 0).sum())}

    def __repr__(self) -> str:
        c = self.counts()
        return (f"VWW({self.format}, split={self.split}, {len(self)} images at {self.resolution}px, "
                f"{c['person']} person / {c['non_person']} non-person, rule={self.rule})")


def cache_dir() -> Path:
    """Where generated sets are cached: $MCUNET_LITE_CACHE, else ~/.cache/mcunet-lite."""
    return Path(os.environ.get("MCUNET_LITE_CACHE") or Path.home() / ".cache" / "mcunet-lite")


def synthetic(n: int, resolution: int = 64, split: str = "train", seed: int = 0, difficulty: float = 0.5,
              cache: bool = True, workers: int | None = None, progress: bool = True, crowd: bool = False) -> VWW:
    """`n` synthetic scenes of the stream (`seed`, `split`) rendered at `resolution`, labelled by pyvww.

    Train and val are disjoint streams. Scene i is the same at every resolution and for every n,
    so a cached larger set of the same stream serves a smaller request.
    """
    if n < 0 or not 8 <= resolution <= MAX_RESOLUTION:
        raise UserError(f"need n >= 0 and a resolution in [8, {MAX_RESOLUTION}], got n={n}, resolution={resolution}")
    if not 0 <= difficulty <= 1:  # also refuses NaN
        raise UserError(f"difficulty must be a number in [0, 1], got {difficulty}")
    if n * resolution * resolution * 3 > MAX_SYNTH_BYTES:
        raise UserError(f"{n} scenes at {resolution}x{resolution} take {n * resolution ** 2 * 3 / 2 ** 30:.1f} GiB, over "
                        f"{MAX_SYNTH_BYTES // 2 ** 30} GiB; generate fewer or smaller images")
    if split not in ("train", "val"):
        raise UserError(f"synthetic split must be 'train' or 'val', got '{split}'")
    key = f"synth-v{VERSION}-{split}-s{seed}-d{difficulty:g}-r{resolution}" + ("-crowd" if crowd else "")
    hit = None
    if cache:
        sizes = sorted(int(p.stem.rsplit("-n", 1)[1]) for p in cache_dir().glob(f"{key}-n*.npz"))
        hit = next((m for m in sizes if m >= n), None)
    if hit is not None:
        with np.load(cache_dir() / f"{key}-n{hit}.npz", allow_pickle=False) as z:
            images, labels, anns = z["images"][:n], z["labels"][:n], _unpack_annotations(z["anns"], n)
    else:
        images, labels, anns = generate(n, resolution, split, seed, difficulty, workers, progress, crowd)
        if cache:
            _save_npz(cache_dir() / f"{key}-n{n}.npz", images=images, labels=labels, anns=_pack_annotations(anns))
    meta = {"seed": seed, "difficulty": difficulty, "version": VERSION, "mlperf_labels": labels[:, 1], "crowd": crowd}
    return VWW(labels[:, 0], resolution, "synthetic", "pyvww", split, pixels=images, annotations=anns, meta=meta)


def _pack_annotations(anns: list[list[dict]]) -> np.ndarray:
    """Annotations -> float array rows (image index, area, x, y, w, h) for the npz cache."""
    rows = [(i, a["area"], *a["bbox"]) for i, per in enumerate(anns) for a in per]
    return np.asarray(rows, np.float64).reshape(-1, 6)


def _unpack_annotations(rows: np.ndarray, n: int) -> list[list[dict]]:
    """Inverse of `_pack_annotations` for the first n images."""
    anns: list[list[dict]] = [[] for _ in range(n)]
    for i, area, *box in rows:
        if int(i) < n:
            anns[int(i)].append({"category_id": 1, "area": float(area), "bbox": [int(v) for v in box], "iscrowd": 0})
    return anns


def _save_npz(path: Path, **arrays) -> None:
    """Write an npz atomically, so concurrent processes (DDP ranks) never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


# ------------------------------------------------------------------------ real formats: read
FORMATS = {
    "pyvww": "annotations/instances_train.json and instances_val.json (COCO style) with the images under images/",
    "mlperf": "person/ and non_person/ folders of 96x96 images (MLPerf Tiny vw_coco2014_96)",
    "vww01": "raw 96x96x3 uint8 .bin files listed in y_labels.csv (MLPerf Tiny evaluation set)",
}
EXPECTED = ("; expected one of: " + "; ".join(f"{k}: {v}" for k, v in FORMATS.items())
            + ". See datasets/README.md to prepare one, or use the synthetic stand-in")
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")


def _pyvww_json(root: Path, split: str) -> Path | None:
    """The pyvww annotation file of `split` under `root` (or root/annotations), if present."""
    for d in (root / "annotations", root):
        if (d / f"instances_{split}.json").is_file():
            return d / f"instances_{split}.json"
    return None


def _mlperf_root(root: Path) -> Path | None:
    """The folder holding person/ and non_person/ (root itself or root/vw_coco2014_96)."""
    for d in (root, root / "vw_coco2014_96"):
        if (d / "person").is_dir() and (d / "non_person").is_dir():
            return d
    return None


def detect(path: str | Path) -> str:
    """Which VWW layout `path` holds: 'pyvww', 'mlperf' or 'vww01'; a clear error otherwise."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"'{path}' is not a folder{EXPECTED}")
    if (root / "y_labels.csv").is_file():
        return "vww01"
    if _mlperf_root(root):
        return "mlperf"
    if _pyvww_json(root, "train") or _pyvww_json(root, "val"):
        return "pyvww"
    raise UserError(f"'{path}' holds no Visual Wake Words data{EXPECTED}")


def _read_pyvww(root: Path, split: str) -> tuple[list[dict], np.ndarray, dict[int, list[dict]]]:
    """Parse and check a pyvww JSON: (images sorted by id, labels, person annotations by image id)."""
    path = _pyvww_json(root, split)
    if path is None:
        raise UserError(f"'{root}' has no instances_{split}.json (looked in {root} and {root / 'annotations'}); "
                        "build it with datasets/build_vww.py")
    try:
        d = json.loads(path.read_text())
        cats = {c["id"]: c["name"] for c in d["categories"]}
        images = sorted(d["images"], key=lambda im: im["id"])
        bad = next((im for im in images if not (isinstance(im["height"], int) and isinstance(im["width"], int)
                                                and im["height"] >= 1 and im["width"] >= 1)), None)
        if bad is not None:
            raise ValueError(f"image {bad['id']} is {bad['width']}x{bad['height']}; sizes must be positive integers")
        by_image: dict[int, list[dict]] = {im["id"]: [] for im in images}
        for a in d["annotations"]:
            by_image[a["image_id"]].append(a)
        labels = np.array([pyvww_label(by_image[im["id"]], im["height"], im["width"]) for im in images], np.int64)
        small = [a for im in images for a in by_image[im["id"]]
                 if a["category_id"] == 1 and a["area"] / (im["height"] * im["width"]) <= PYVWW_AREA]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise UserError(f"malformed pyvww file '{path}': {type(e).__name__} {e}; expected COCO-style JSON with "
                        "images[{id, file_name, height, width}], annotations[{image_id, category_id, area}], "
                        "categories[{id, name}]") from None
    if len(cats) != 2 or cats.get(1) != "person":
        raise UserError(f"'{path}' has {len(cats)} categories, not VWW's two (0 not-person, 1 person): "
                        "a raw COCO file? build VWW annotations from it with datasets/build_vww.py")
    if small:
        raise UserError(f"'{path}' keeps {len(small)} person annotations at or below 0.5% of the image, so it "
                        "was not built with the pyvww rule; rebuild it with datasets/build_vww.py")
    return images, labels, by_image


def _mlperf_files(root: Path, split: str) -> tuple[list[Path], np.ndarray]:
    """Image files and labels of an MLPerf folder; val = every 10th file of each class in name order."""
    files, labels = [], []
    for label, cls in ((1, "person"), (0, "non_person")):
        names = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_EXT)
        keep = [p for i, p in enumerate(names) if split == "all" or (i % 10 == 9) == (split == "val")]
        files += keep
        labels += [label] * len(keep)
    return files, np.array(labels, np.int64)


def _read_vww01(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read the vww01 evaluation set: (N, S, S, 3) uint8, labels, file names; checks every line."""
    pixels, labels, names = [], [], []
    for k, line in enumerate((root / "y_labels.csv").read_text().splitlines(), 1):
        if not line.strip():
            continue
        f = [v.strip() for v in line.split(",")]
        if len(f) != 3 or f[1] != "2" or f[2] not in ("0", "1") or not f[0].endswith(".bin"):
            raise UserError(f"{root / 'y_labels.csv'} line {k}: '{line}' is not 'name.bin,2,label' with label 0 or 1")
        fits = (root / f[0]).is_file() and (root / f[0]).stat().st_size <= 3 * MAX_IMAGE_PIXELS
        raw = np.fromfile(root / f[0], np.uint8) if fits else None
        s = int(round(math.sqrt(len(raw) / 3))) if raw is not None else 0
        if raw is None or 3 * s * s != len(raw):
            raise UserError(f"{root / f[0]} (line {k} of y_labels.csv) is missing or not a raw square HxWx3 uint8 image")
        pixels.append(raw.reshape(s, s, 3))
        labels.append(int(f[2]))
        names.append(f[0])
    if not pixels or len({p.shape for p in pixels}) != 1:
        raise UserError(f"{root / 'y_labels.csv'} lists no images, or images of different sizes")
    return np.stack(pixels), np.array(labels, np.int64), names


def load(path: str | Path, split: str = "train", resolution: int = 96) -> VWW:
    """Open a real VWW folder (layout detected) as a dataset of `resolution` x `resolution` images.

    `split` is 'train' or 'val' ('all' for the MLPerf folder); vww01 is an evaluation set: 'val' only.
    """
    root, fmt = Path(path), detect(path)
    if split not in ("train", "val", "all"):
        raise UserError(f"split must be 'train', 'val' or 'all', got '{split}'")
    if fmt == "vww01":
        if split == "train":
            raise UserError(f"'{path}' is the vww01 evaluation set (no training split); train on a "
                            "vw_coco2014_96 or pyvww folder, or on synthetic data")
        pixels, labels, _ = _read_vww01(root)
        return VWW(labels, resolution, fmt, "mlperf", split, pixels=_resize_all(pixels, resolution))
    if fmt == "mlperf":
        files, labels = _mlperf_files(_mlperf_root(root), split)
        return VWW(labels, resolution, fmt, "mlperf", split, files=files)
    if split == "all":
        raise UserError("pyvww data comes as 'train' and 'val' splits; choose one")
    images, labels, by_image = _read_pyvww(root, split)
    folder = root / "images"
    if not folder.is_dir():
        raise UserError(f"'{folder}' is missing: put (or link) all COCO 2014 images there; see datasets/README.md")
    return VWW(labels, resolution, fmt, "pyvww", split, files=[folder / im["file_name"] for im in images],
               annotations=[by_image[im["id"]] for im in images])


def info(path: str | Path) -> dict:
    """Format, label rule, images per class and split, and image size of a VWW folder (no pixels read)."""
    root, fmt = Path(path), detect(path)
    splits, sizes = {}, set()
    if fmt == "pyvww":
        for split in ("train", "val"):
            if _pyvww_json(root, split):
                images, labels, _ = _read_pyvww(root, split)
                splits[split] = labels
                sizes |= {(im["height"], im["width"]) for im in images}
    elif fmt == "mlperf":
        for split in ("train", "val"):
            files, splits[split] = _mlperf_files(_mlperf_root(root), split)
            sizes |= {image_size(f) for f in files[:1] + files[-1:]}
    else:
        pixels, splits["val"], _ = _read_vww01(root)
        sizes.add(pixels.shape[1:3])
    rule = "mlperf" if fmt != "pyvww" else "pyvww"
    return {"path": str(root), "format": fmt, "rule": rule, "rule_text": RULES[rule],
            "splits": {k: {"images": len(v), "person": int((v == 1).sum()), "non_person": int((v == 0).sum())}
                       for k, v in splits.items()},
            "image_size": sorted(list(s) for s in sizes)}


# ----------------------------------------------------------------------- real formats: write
CATEGORIES = [{"id": 0, "name": "not-person", "supercategory": "background"},
              {"id": 1, "name": "person", "supercategory": "person"}]


def write(ds: VWW, out: str | Path, format: str) -> int:
    """Write a synthetic set in a real layout so `load` reads it back; returns images written.

    pyvww: images/ + annotations/instances_{split}.json (person annotations above 0.5%, as the
    pyvww builder keeps them). mlperf: person/ and non_person/ by the 2.5% box rule, dropping
    scenes with only smaller people. vww01: .bin files + y_labels.csv, same rule. PNG keeps pixels exact.
    """
    if ds.annotations is None or ds.format != "synthetic":
        raise UserError("only synthetic sets can be written: they carry the person annotations both rules need")
    if format not in FORMATS:
        raise UserError(f"unknown format '{format}'; choose one of {', '.join(FORMATS)}")
    out, r = Path(out), ds.resolution
    images, _ = ds.arrays()
    name = f"synth_{ds.split}_s{ds.meta['seed']}"
    if format == "pyvww":
        (out / "images").mkdir(parents=True, exist_ok=True)
        (out / "annotations").mkdir(exist_ok=True)
        scale = (r / LABEL_RES) ** 2
        js = {"info": {"description": "mcunet-lite synthetic Visual Wake Words stand-in", **_meta_json(ds)},
              "images": [], "annotations": [], "categories": CATEGORIES}
        for i, img in enumerate(images):
            fname = f"{name}_{i:06d}.png"
            Image.fromarray(img).save(out / "images" / fname)
            js["images"].append({"id": i, "file_name": fname, "height": r, "width": r})
            for a in ds.annotations[i]:
                if a["area"] / LABEL_RES ** 2 > PYVWW_AREA:
                    js["annotations"].append({"id": len(js["annotations"]), "image_id": i, "category_id": 1,
                                              "area": a["area"] * scale, "iscrowd": 0,
                                              "bbox": [v * r / LABEL_RES for v in a["bbox"]]})
        (out / "annotations" / f"instances_{ds.split}.json").write_text(json.dumps(js))
        return len(images)
    keep = [i for i, lab in enumerate(ds.meta["mlperf_labels"]) if lab >= 0]
    if format == "mlperf":
        for cls in ("person", "non_person"):
            (out / cls).mkdir(parents=True, exist_ok=True)
        for i in keep:
            cls = "person" if ds.meta["mlperf_labels"][i] == 1 else "non_person"
            Image.fromarray(images[i]).save(out / cls / f"{name}_{i:06d}.png")
        return len(keep)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in keep:
        images[i].tofile(out / f"{name}_{i:06d}.bin")
        lines.append(f"{name}_{i:06d}.bin,2,{int(ds.meta['mlperf_labels'][i])}")
    (out / "y_labels.csv").write_text("\n".join(lines) + "\n")
    return len(keep)


def _meta_json(ds: VWW) -> dict:
    """The JSON-ready part of a synthetic set's metadata."""
    return {k: v for k, v in ds.meta.items() if k != "mlperf_labels"}


# -------------------------------------------------------------------- VWW from COCO 2014 files
def build_pyvww(coco: dict, image_ids: set[int] | None = None) -> dict:
    """A COCO instances dict -> pyvww annotations: every image kept, person annotations > 0.5% kept.

    Same output as the pyvww builder (Mxbonn/visualwakewords): categories 0 not-person, 1 person;
    an image is 'person' iff it has an annotation. Segmentations are dropped (labels never use them).
    """
    person = next((c["id"] for c in coco["categories"] if c["name"] == "person"), None)
    if person is None:
        raise UserError("the COCO file has no 'person' category")
    images = [im for im in coco["images"] if image_ids is None or im["id"] in image_ids]
    hw = {im["id"]: im["height"] * im["width"] for im in images}
    anns = [{"id": k, "image_id": a["image_id"], "category_id": 1, "area": a["area"], "bbox": a["bbox"],
             "iscrowd": a.get("iscrowd", 0)}
            for k, a in enumerate(a for a in coco["annotations"] if a["image_id"] in hw
                                  and a["category_id"] == person and a["area"] / hw[a["image_id"]] > PYVWW_AREA)]
    return {"info": {"description": "Visual Wake Words (pyvww rule: person area > 0.5%)"},
            "images": images, "annotations": anns, "categories": CATEGORIES}


def build_from_coco(coco_files: list[Path], minival_ids: list[int], out: Path, images: Path | None = None,
                    mlperf_out: Path | None = None, progress: bool = True) -> dict[str, int]:
    """COCO 2014 instance files -> pyvww train/val JSON (val = the minival ids) and, with `images`,
    the 96x96 MLPerf folder layout. Offline: reads only local files. Returns counts for a report."""
    from tqdm.auto import tqdm
    merged: dict = {"images": [], "annotations": [], "categories": None}
    for f in coco_files:
        try:
            d = json.loads(Path(f).read_text())
            merged["images"] += d["images"]
            merged["annotations"] += d["annotations"]
            merged["categories"] = merged["categories"] or d["categories"]
        except (OSError, ValueError, KeyError, RecursionError) as e:
            raise UserError(f"cannot read COCO instances file '{f}': {e}; expected instances_train2014.json / "
                            "instances_val2014.json from annotations_trainval2014.zip") from None
    val = set(minival_ids)
    all_ids = {im["id"] for im in merged["images"]}
    if not val & all_ids:
        raise UserError("none of the minival ids is in the COCO files: wrong id list?")
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, ids in (("train", all_ids - val), ("val", all_ids & val)):
        js = build_pyvww(merged, ids)
        (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(js))
        counts[f"{split}_images"] = len(js["images"])
        counts[f"{split}_person"] = len({a["image_id"] for a in js["annotations"]})
    if images is not None and not (out / "images").exists():
        (out / "images").symlink_to(Path(images).resolve(), target_is_directory=True)
    if mlperf_out is not None:
        if images is None:
            raise UserError("the 96x96 MLPerf layout needs the COCO images: pass --images")
        person = next(c["id"] for c in merged["categories"] if c["name"] == "person")
        by_image: dict[int, list[dict]] = {}
        for a in merged["annotations"]:
            by_image.setdefault(a["image_id"], []).append(a)
        for cls in ("person", "non_person"):
            (mlperf_out / cls).mkdir(parents=True, exist_ok=True)
        counts.update(mlperf_person=0, mlperf_non_person=0, mlperf_dropped=0)
        for im in tqdm(merged["images"], desc="96x96 MLPerf layout", disable=not progress):
            label = mlperf_label(by_image.get(im["id"], []), im["height"], im["width"], person)
            if label < 0:
                counts["mlperf_dropped"] += 1
                continue
            cls = "person" if label else "non_person"
            with _open_image(Path(images) / im["file_name"]) as pic:
                pic.convert("RGB").resize((96, 96), Image.BILINEAR).save(mlperf_out / cls / im["file_name"], quality=95)
            counts[f"mlperf_{cls}"] += 1
    return counts
