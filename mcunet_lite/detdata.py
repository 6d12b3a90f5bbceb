"""Detection data: person and face boxes from the synthetic scenes, WIDER Face, COCO-style JSON.

MCUNetV2 (section 5.3) detects faces on WIDER Face (Yang et al. 2016) and people on Pascal VOC /
COCO. Offline, the synthetic generator of `data` supplies both kinds of box from its scene
description, under the rule its VWW labels use: a box is the tight box of an object's *visible*
pixels in an object-id buffer (occluders drawn later in painter's order and the image border cut
it). A person's box covers its visible figure; its face ("head") box covers the visible pixels
of its head disc, which only other objects can hide (its own hair and eyes are part of the head).
Boxes are measured on a `BOX_RES` buffer in normalised coordinates, so one scene gives the same
boxes at every render resolution.

Every source becomes a `BoxSet`: images letterboxed to a square model input, and ground truth in
each image's own pixels (`truth`) for evaluation. Class indices follow `CLASSES`; COCO category
ids are index + 1 (person = 1, face = 2).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from . import data, scenes
from .cache import load_prefix, store
from .boxes import Truth
from .errors import UserError

CLASSES = ("person", "face")
BOX_RES = 384           # boxes of a scene are measured on a 384x384 id buffer (1/4 pixel at 96 px)
BOXES_VERSION = 1       # bump when the box rule changes: cached boxes of older versions are ignored
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")
PAD = 128               # letterbox fill: 0.0 after data.to_tensor's (x - 128) / 128


# ---------------------------------------------------------------------------- synthetic boxes
def head_masks(scene: scenes.Scene, resolution: int = BOX_RES) -> dict[int, np.ndarray]:
    """Visible pixels of each person's head disc (bool masks), by person object id.

    The head is the first disc among a person's shapes (after its torso and limb chains). Shapes
    drawn later hide it, except the person's own hair and eyes: all of an object's shapes are
    consecutive in painter's order, so redrawing the head after its object's last shape restores
    exactly the pixels its own parts covered.
    """
    heads: dict[int, int] = {}
    for k, (oid, kind, *_) in enumerate(scene.shapes):
        if oid in scene.people and kind == "disc" and oid not in heads:
            heads[oid] = k
    if not heads:
        return {}
    code = {p: i + 1 for i, p in enumerate(sorted(heads))}
    buf = Image.new("L", (resolution, resolution), 0)
    draw = ImageDraw.Draw(buf)
    shapes = scene.shapes
    for k in range(min(heads.values()), len(shapes)):
        oid = shapes[k][0]
        scenes.draw_shape(draw, shapes[k], resolution, code[oid] if heads.get(oid) == k else 255)
        last_of_object = k + 1 == len(shapes) or shapes[k + 1][0] != oid
        if last_of_object and heads.get(oid, len(shapes)) < k:
            scenes.draw_shape(draw, shapes[heads[oid]], resolution, code[oid])
    ids = np.asarray(buf)
    return {p: ids == c for p, c in code.items()}


def scene_boxes(scene: scenes.Scene, resolution: int = BOX_RES) -> np.ndarray:
    """Rows (class, x0, y0, x1, y1, visible area) of a scene, normalised to the image (0..1).

    Persons use `scenes.person_masks` (the VWW label's id buffer), faces `head_masks`; an object
    with no visible pixel has no box.
    """
    rows = []
    for cls, masks in ((0, scenes.person_masks(scene, resolution)), (1, head_masks(scene, resolution))):
        for p in sorted(masks):
            ys, xs = np.nonzero(masks[p])
            if len(ys):
                box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]) / resolution
                rows.append((cls, *box, len(ys) / resolution ** 2))
    return np.asarray(rows, np.float64).reshape(-1, 6)


def synthetic_boxes(n: int, split: str = "train", seed: int = 0, difficulty: float = 0.5,
                    cache: bool = True, crowd: bool = False) -> list[np.ndarray]:
    """`scene_boxes` of scenes 0..n-1 of a stream, cached like `data.synthetic` (a larger cached
    set of the same stream serves a smaller request); resolution-free, so one cache serves all."""
    key = f"detboxes-v{scenes.VERSION}.{BOXES_VERSION}-{split}-s{seed}-d{difficulty:g}" + ("-crowd" if crowd else "")
    z = load_prefix(key, n) if cache else None
    if z is not None:
        rows = z["rows"][z["rows"][:, 0] < n]
    else:
        per = [scene_boxes(scenes.make_scene(seed, i, difficulty, split, crowd)) for i in range(n)]
        rows = np.concatenate([np.c_[np.full(len(r), i), r] for i, r in enumerate(per)]) if n else np.zeros((0, 7))
        if cache:
            store(key, n, rows=rows)
    return [rows[rows[:, 0] == i, 1:] for i in range(n)]


# ------------------------------------------------------------------------------------ BoxSet
def letterbox_geometry(size: tuple[int, int], resolution: int) -> tuple[float, float, int, int, int, int]:
    """(x scale, y scale, x offset, y offset, new w, new h): fit an (h, w) image into a square
    without distortion, centred, as YOLO's letterbox does."""
    h, w = size
    s = resolution / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    return nw / w, nh / h, (resolution - nw) // 2, (resolution - nh) // 2, nw, nh


def letterbox_boxes(boxes: np.ndarray, size: tuple[int, int], resolution: int, inverse: bool = False) -> np.ndarray:
    """xyxy boxes in an (h, w) image's pixels -> letterboxed input pixels (or back, `inverse`)."""
    sx, sy, ox, oy, _, _ = letterbox_geometry(size, resolution)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return (b - [ox, oy, ox, oy]) / [sx, sy, sx, sy] if inverse else b * [sx, sy, sx, sy] + [ox, oy, ox, oy]


class BoxSet:
    """Images with boxes: `(to_tensor(image), boxes, labels)` items for torch, ground truth for AP.

    Images live in memory (`pixels`, N x S x S x 3) or in files; `boxes[i]` are xyxy in image i's
    own pixels, `labels[i]` class indices into `CLASSES`, `ignore[i]` marks boxes that count
    neither way (WIDER's invalid faces, COCO crowds, VOC's "difficult"), `areas[i]` the visible
    pixel areas where known (synthetic). `classes` names the classes this set annotates; items come
    letterboxed to `resolution` x `resolution`.
    """

    def __init__(self, boxes: list[np.ndarray], labels: list[np.ndarray], resolution: int, format: str,
                 split: str, classes: tuple[str, ...], pixels: np.ndarray | None = None,
                 files: list[Path] | None = None, ignore: list[np.ndarray] | None = None,
                 areas: list[np.ndarray] | None = None, meta: dict | None = None) -> None:
        self.boxes = [np.asarray(b, np.float64).reshape(-1, 4) for b in boxes]
        self.labels = [np.asarray(v, np.int64).reshape(-1) for v in labels]
        self.ignore = [np.asarray(v, bool) for v in ignore] if ignore is not None else \
            [np.zeros(len(b), bool) for b in self.boxes]
        self.areas = areas
        self.resolution, self.format, self.split, self.classes = resolution, format, split, classes
        self.pixels, self.files, self.meta = pixels, files, meta or {}
        self._sizes: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self.boxes)

    def size(self, i: int) -> tuple[int, int]:
        """(h, w) of image i as stored (files: read from the header once)."""
        if self.pixels is not None:
            return tuple(self.pixels.shape[1:3])
        if i not in self._sizes:
            try:
                with Image.open(self.files[i]) as im:
                    self._sizes[i] = im.size[::-1]
            except OSError as e:
                raise UserError(f"cannot read image '{self.files[i]}': {e}") from None
        return self._sizes[i]

    def raw_image(self, i: int) -> np.ndarray:
        """Image i as stored, (h, w, 3) uint8."""
        if self.pixels is not None:
            return self.pixels[i]
        try:
            with Image.open(self.files[i]) as im:
                return np.asarray(im.convert("RGB"))
        except OSError as e:
            raise UserError(f"cannot read image '{self.files[i]}': {e}") from None

    def image(self, i: int) -> np.ndarray:
        """Image i letterboxed to the model input, (R, R, 3) uint8."""
        return letterbox(self.raw_image(i), self.resolution)

    def to_input(self, i: int, boxes: np.ndarray) -> np.ndarray:
        """xyxy boxes in image i's pixels -> model-input pixels."""
        return letterbox_boxes(boxes, self.size(i), self.resolution)

    def from_input(self, i: int, boxes: np.ndarray) -> np.ndarray:
        """Model-input pixels -> image i's pixels (inverse of `to_input`)."""
        return letterbox_boxes(boxes, self.size(i), self.resolution, inverse=True)

    def __getitem__(self, i: int):
        """(image tensor 3xRxR, boxes (K, 4) xyxy in input pixels, class indices (K,)); ignored
        boxes are left out (they are no training target)."""
        import torch
        keep = ~self.ignore[i]
        return (data.to_tensor(self.image(i)), torch.from_numpy(self.to_input(i, self.boxes[i][keep])).float(),
                torch.from_numpy(self.labels[i][keep]))

    def truth(self, i: int) -> Truth:
        """Ground truth of image i in its own pixels, for `boxes.evaluate`."""
        return Truth(self.boxes[i], self.labels[i], self.ignore[i], self.size(i))

    def counts(self) -> dict[str, int]:
        """Boxes per class (ignored ones left out)."""
        return {c: int(sum(((v == CLASSES.index(c)) & ~g).sum() for v, g in zip(self.labels, self.ignore)))
                for c in self.classes}

    def __repr__(self) -> str:
        c = ", ".join(f"{v} {k}" for k, v in self.counts().items())
        return f"BoxSet({self.format}, split={self.split}, {len(self)} images at {self.resolution}px, boxes: {c})"


def letterbox(img: np.ndarray, resolution: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (R, R, 3): resized to fit (bilinear), centred, padded with mid-grey."""
    sx, sy, ox, oy, nw, nh = letterbox_geometry(img.shape[:2], resolution)
    if (nh, nw) == img.shape[:2] == (resolution, resolution):
        return img
    out = np.full((resolution, resolution, 3), PAD, np.uint8)
    out[oy:oy + nh, ox:ox + nw] = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    return out


def collate(batch: list) -> tuple:
    """DataLoader collate: stacked images, and lists of per-image boxes and labels."""
    import torch
    xs, bs, ls = zip(*batch)
    return torch.stack(xs), list(bs), list(ls)


def synthetic(n: int, resolution: int = 128, split: str = "train", seed: int = 0, difficulty: float = 0.5,
              cache: bool = True, workers: int | None = None, progress: bool = True, crowd: bool = False) -> BoxSet:
    """`n` synthetic scenes with person and face boxes, rendered at `resolution` (images cached by
    `data.synthetic`, boxes by `synthetic_boxes`); `crowd` scenes hold many small figures."""
    vww = data.synthetic(n, resolution, split, seed, difficulty, cache, workers, progress, crowd)
    rows = synthetic_boxes(n, split, seed, difficulty, cache, crowd)
    return BoxSet([r[:, 1:5] * resolution for r in rows], [r[:, 0] for r in rows], resolution, "synthetic", split,
                  CLASSES, pixels=vww.pixels, areas=[r[:, 5] * resolution ** 2 for r in rows],
                  meta={"seed": seed, "difficulty": difficulty, "crowd": crowd,
                        "version": f"{scenes.VERSION}.{BOXES_VERSION}"})


# ------------------------------------------------------------------------------- COCO-style JSON
def coco_dict(ds: BoxSet, file_names: list[str] | None = None) -> dict:
    """A BoxSet as COCO instances JSON: bbox [x, y, w, h] in image pixels, area (visible pixels
    where known, else the box), iscrowd (= ignored), categories person = 1, face = 2."""
    names = file_names or [f.name for f in ds.files]
    out = {"info": {"description": f"mcunet-lite {ds.format} boxes", **{k: str(v) for k, v in ds.meta.items()}},
           "images": [], "annotations": [],
           "categories": [{"id": i + 1, "name": c, "supercategory": "person"} for i, c in enumerate(CLASSES)]}
    for i in range(len(ds)):
        h, w = ds.size(i)
        out["images"].append({"id": i, "file_name": names[i], "height": h, "width": w})
        for k, (b, c, g) in enumerate(zip(ds.boxes[i], ds.labels[i], ds.ignore[i])):
            wh = [float(b[2] - b[0]), float(b[3] - b[1])]
            a = float(ds.areas[i][k]) if ds.areas is not None else wh[0] * wh[1]
            out["annotations"].append({"id": len(out["annotations"]), "image_id": i, "category_id": int(c) + 1,
                                       "bbox": [float(b[0]), float(b[1]), *wh], "area": a, "iscrowd": int(g)})
    return out


def write_coco(ds: BoxSet, out: str | Path) -> Path:
    """Write an in-memory set as images/*.png + annotations/instances_{split}.json (PNG keeps the
    pixels exact); `load` reads the folder back. Returns the JSON path."""
    if ds.pixels is None:
        raise UserError("only in-memory sets (synthetic) can be written; file-backed sets already have their files")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(exist_ok=True)
    names = [f"det_{ds.split}_{ds.meta.get('seed', 0)}_{i:06d}.png" for i in range(len(ds))]
    for name, img in zip(names, ds.pixels):
        Image.fromarray(img).save(out / "images" / name)
    path = out / "annotations" / f"instances_{ds.split}.json"
    path.write_text(json.dumps(coco_dict(ds, names)))
    return path


def load_coco(path: str | Path, images: str | Path, resolution: int = 128, split: str = "val",
              categories: tuple[str, ...] = CLASSES) -> BoxSet:
    """Boxes of the named `categories` (person, face) from a COCO instances JSON over an image
    folder; crowd annotations are ignored in AP, as COCO does. Images without such boxes stay
    (they hold the false positives)."""
    path, images = Path(path), Path(images)
    if not path.is_file():
        raise UserError(f"COCO annotation file '{path}' is missing; expected an instances JSON "
                        "(e.g. annotations/instances_val2017.json)")
    if not images.is_dir():
        raise UserError(f"image folder '{images}' is missing; expected the folder holding the JSON's file_name entries")
    try:
        d = json.loads(path.read_text())
        ids = {c["id"]: CLASSES.index(c["name"]) for c in d["categories"] if c["name"] in categories}
        index = {im["id"]: k for k, im in enumerate(d["images"])}
        boxes: list[list] = [[] for _ in d["images"]]
        for a in d["annotations"]:
            if a["category_id"] in ids:
                x, y, w, h = a["bbox"]
                boxes[index[a["image_id"]]].append((x, y, x + w, y + h, ids[a["category_id"]], a.get("iscrowd", 0)))
        files = [images / im["file_name"] for im in d["images"]]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"malformed COCO file '{path}': {type(e).__name__} {e}; expected images[{{id, file_name}}], "
                        "annotations[{image_id, category_id, bbox, iscrowd}], categories[{id, name}]") from None
    if not ids:
        raise UserError(f"'{path}' has none of the categories {', '.join(categories)}")
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise UserError(f"{len(missing)} image(s) listed in '{path}' are not in '{images}', e.g. '{missing[0].name}'")
    rows = [np.asarray(b, np.float64).reshape(-1, 6) for b in boxes]
    found = tuple(c for c in CLASSES if CLASSES.index(c) in ids.values())
    return BoxSet([r[:, :4] for r in rows], [r[:, 4] for r in rows], resolution, "coco", split, found,
                  files=files, ignore=[r[:, 5] > 0 for r in rows])


# ------------------------------------------------------------------------------------ WIDER Face
WIDER_FIELDS = ("x1", "y1", "w", "h", "blur", "expression", "illumination", "invalid", "occlusion", "pose")


def read_wider_gt(path: str | Path) -> list[tuple[str, np.ndarray]]:
    """Parse a WIDER Face `wider_face_{split}_bbx_gt.txt`: (image path, (M, 10) int rows) per image.

    The format: an image path line, a face-count line, then one line per face of `WIDER_FIELDS`;
    an image with no face still carries one row of zeros (returned as an empty (0, 10) array).
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        name = lines[i].strip()
        if not name:
            i += 1
            continue
        where = f"{path} line {i + 1}"
        if not name.lower().endswith(IMAGE_EXT):
            raise UserError(f"{where}: expected an image path (e.g. 0--Parade/0_Parade_marchingband_1_849.jpg), "
                            f"got '{name}'")
        if i + 1 >= len(lines) or not lines[i + 1].strip().isdigit():
            raise UserError(f"{where}: the face count after '{name}' is missing or not a number")
        count = int(lines[i + 1])
        rows = []
        for k in range(i + 2, i + 2 + max(count, 1)):
            fields = lines[k].split() if k < len(lines) else []
            if len(fields) != 10 or not all(f.lstrip("-").isdigit() for f in fields):
                raise UserError(f"{path} line {k + 1}: expected 10 integers ({' '.join(WIDER_FIELDS)}) for "
                                f"'{name}', got '{lines[k] if k < len(lines) else '<end of file>'}'")
            rows.append([int(f) for f in fields])
        if count == 0 and any(rows[0]):
            raise UserError(f"{path} line {i + 3}: '{name}' has 0 faces, so its one row must be all zeros")
        out.append((name, np.asarray(rows[:count], np.int64).reshape(-1, 10)))
        i += 2 + max(count, 1)
    return out


def load_wider(root: str | Path, split: str = "val", resolution: int = 128) -> BoxSet:
    """WIDER Face as a BoxSet of face boxes: `wider_face_split/wider_face_{split}_bbx_gt.txt` and
    `WIDER_{split}/images/`. Faces flagged invalid, or with no width or height, are ignored in AP."""
    root = Path(root)
    if split not in ("train", "val"):
        raise UserError(f"WIDER Face has 'train' and 'val' box files, not '{split}'")
    gt = root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt"
    images = root / f"WIDER_{split}" / "images"
    expected = (f"; expected {root}/wider_face_split/wider_face_{split}_bbx_gt.txt and {root}/WIDER_{split}/images/ "
                "(from wider_face_split.zip and WIDER_{split}.zip)")
    if not root.is_dir():
        raise UserError(f"'{root}' is not a folder{expected}")
    for p in (gt, images):
        if not p.exists():
            raise UserError(f"'{p}' is missing{expected}")
    entries = read_wider_gt(gt)
    files = [images / name for name, _ in entries]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise UserError(f"{len(missing)} image(s) listed in '{gt}' are not under '{images}', e.g. '{missing[0]}'")
    boxes = [np.c_[r[:, :2], r[:, :2] + r[:, 2:4]].astype(np.float64) for _, r in entries]  # xywh -> xyxy
    ignore = [(r[:, 7] == 1) | (r[:, 2] <= 0) | (r[:, 3] <= 0) for _, r in entries]
    return BoxSet(boxes, [np.full(len(r), CLASSES.index("face")) for _, r in entries], resolution, "wider", split,
                  ("face",), files=files, ignore=ignore)


# -------------------------------------------------------------------------------------- any
def load(source: str | Path, split: str = "val", resolution: int = 128, images: str | Path | None = None,
         n: int = 1000, seed: int = 0, difficulty: float = 0.5, progress: bool = True) -> BoxSet:
    """A BoxSet from 'synthetic' or 'synthetic-crowd' (`n` scenes; crowds of small figures), a
    WIDER Face folder, a COCO-style folder (annotations/instances_{split}.json + images/, as
    `write_coco` makes) or an instances JSON with its `images` folder."""
    if str(source) in ("synthetic", "synthetic-crowd"):
        return synthetic(n, resolution, split, seed, difficulty, progress=progress,
                         crowd=str(source) == "synthetic-crowd")
    root = Path(source)
    if root.is_file() and root.suffix == ".json":
        if images is None:
            raise UserError(f"'{root}' is a COCO annotation file: give its image folder too (--images DIR)")
        return load_coco(root, images, resolution, split)
    if (root / "wider_face_split").is_dir():
        return load_wider(root, split, resolution)
    if (root / "annotations" / f"instances_{split}.json").is_file():
        return load_coco(root / "annotations" / f"instances_{split}.json", images or root / "images", resolution, split)
    raise UserError(f"'{source}' holds no detection data; expected 'synthetic', 'synthetic-crowd', a WIDER Face folder "
                    "(wider_face_split/ + WIDER_{train,val}/images/), a COCO-style folder "
                    f"(annotations/instances_{split}.json + images/) or an instances JSON with --images DIR")
