"""Build Visual Wake Words from local COCO 2014 files, offline.

Reads instances_train2014.json and instances_val2014.json, moves the images whose ids are in your
minival list to the validation split, and writes pyvww annotation files (person if a person
segmentation area > 0.5% of the image):

    OUT/annotations/instances_train.json
    OUT/annotations/instances_val.json
    OUT/images -> your COCO 2014 image folder (a link, with --images)

With --mlperf-96 DIR (needs --images) it also writes MLPerf Tiny's layout: DIR/person and
DIR/non_person, 96x96 JPEGs, person if a non-crowd person box > 2.5% of the image, images whose
people are all smaller dropped. Nothing is downloaded. See datasets/README.md.

    python datasets/build_vww.py --coco ~/coco/annotations --minival-ids mscoco_minival_ids.txt \\
        --out ~/vww --images ~/coco/all2014 [--mlperf-96 ~/vw_coco2014_96]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mcunet_lite import data
from mcunet_lite.errors import UserError


def read_ids(path: Path) -> list[int]:
    """Image ids, one integer per line (blank lines ignored)."""
    try:
        lines = Path(path).read_text().split()
    except OSError as e:
        raise UserError(f"cannot read the minival id list '{path}': {e}") from None
    try:
        return [int(v) for v in lines]
    except ValueError as e:
        raise UserError(f"'{path}' must hold one integer image id per line: {e}") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coco", required=True, type=Path,
                    help="folder with instances_train2014.json and instances_val2014.json")
    ap.add_argument("--minival-ids", required=True, type=Path, help="text file of validation image ids (8,059)")
    ap.add_argument("--out", required=True, type=Path, help="output folder for the pyvww annotations")
    ap.add_argument("--images", type=Path, help="folder holding all COCO 2014 train and val images")
    ap.add_argument("--mlperf-96", type=Path, help="also write the 96x96 person/non_person folders here")
    a = ap.parse_args(argv)
    try:
        files = [a.coco / f"instances_{s}2014.json" for s in ("train", "val")]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise UserError(f"missing {', '.join(missing)}: unzip annotations_trainval2014.zip into --coco")
        counts = data.build_from_coco(files, read_ids(a.minival_ids), a.out, a.images, a.mlperf_96)
    except UserError as e:
        print(f"build_vww: error: {e}", file=sys.stderr)
        return 2
    for k, v in counts.items():
        print(f"{k:20s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
