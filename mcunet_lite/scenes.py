"""The synthetic stand-in for Visual Wake Words: procedural scenes described without a resolution.

A scene is a background and a painter's-order list of shapes (people, look-alike negatives,
clutter) in normalised coordinates, so one scene renders at any resolution (MCUNet's resolution
search needs the same image at many sizes; DESIGN.md section 7). `person_masks` draws an object-id
buffer, so occlusion and image borders cut a person's visible area exactly as a COCO segmentation
does; `scene_annotations` turns it into the COCO-style annotations the VWW label rules read
(`data.pyvww_label`). The dataset formats, the label rules and the cached sets live in `data`.
"""
from __future__ import annotations

import colorsys
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

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


def draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, size: int, fill) -> None:
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
        draw_shape(draw, shape, s, shape[4])
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
            draw_shape(draw, shape, resolution, shape[0] if shape[0] in scene.people else 255)
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
