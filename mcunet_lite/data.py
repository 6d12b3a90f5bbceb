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

import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .cache import load_prefix, store
from .errors import UserError
from .scenes import LABEL_RES, VERSION, make_scene, render, scene_annotations

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
    z = load_prefix(key, n) if cache else None
    if z is not None:
        images, labels, anns = z["images"][:n], z["labels"][:n], _unpack_annotations(z["anns"], n)
    else:
        images, labels, anns = generate(n, resolution, split, seed, difficulty, workers, progress, crowd)
        if cache:
            store(key, n, images=images, labels=labels, anns=_pack_annotations(anns))
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
