"""VWW data: label rules on hand-made COCO fixtures, the builder, loaders of every layout, synthetic
round trips through each writer, the generator's determinism and resolution independence, errors."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mcunet_lite import data, scenes
from mcunet_lite.errors import UserError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MCUNET_LITE_CACHE", str(tmp_path / "cache"))


def ann(area=0.0, box=(0, 0, 1, 1), crowd=0, cat=1, image=1):
    return {"image_id": image, "category_id": cat, "area": area, "bbox": list(box), "iscrowd": crowd}


# ------------------------------------------------------------------------------ label rules
@pytest.mark.parametrize("anns,pyvww,mlperf", [
    ([], 0, 0),                                                   # no annotation
    ([ann(50.0)], 0, -1),                                         # area exactly 0.5%: not a person (strict >)
    ([ann(50.01)], 1, -1),                                        # just above; box 1x1 is small -> dropped
    ([ann(60, (0, 0, 25, 10))], 1, -1),                           # box exactly 2.5%: not enough
    ([ann(60, (0, 0, 26, 10))], 1, 1),                            # box just above 2.5%
    ([ann(900, (0, 0, 30, 30), crowd=1)], 1, -1),                 # crowd: counts for pyvww, not for MLPerf
    ([ann(10), ann(2000, (0, 0, 50, 50))], 1, 1),                 # several annotations, one large
    ([ann(10), ann(20)], 0, -1),                                  # several, all small
    ([ann(5000, (0, 0, 80, 80), cat=18)], 0, 0),                  # a large dog is not a person
])
def test_label_rules_on_edge_cases(anns, pyvww, mlperf):
    assert data.pyvww_label(anns, 100, 100) == pyvww
    assert data.mlperf_label(anns, 100, 100) == mlperf


def _coco(images, anns):
    cats = [{"id": 1, "name": "person", "supercategory": "person"}, {"id": 18, "name": "dog", "supercategory": "animal"}]
    return {"images": [{"id": i, "file_name": f"COCO_{i:012d}.jpg", "height": 100, "width": 100} for i in images],
            "annotations": [dict(a, id=k) for k, a in enumerate(anns)], "categories": cats}


def test_build_from_coco_fixture_then_load_both_layouts(tmp_path):
    """Hand-made COCO 2014 files -> pyvww JSON (minival split) and the 96x96 MLPerf folders."""
    expect = {  # image id: (annotations, pyvww label, mlperf label)
        1: ([], 0, 0),
        2: ([ann(50.0, image=2)], 0, -1),
        3: ([ann(50.5, (0, 0, 26, 10), image=3)], 1, 1),
        4: ([ann(900, (0, 0, 30, 30), crowd=1, image=4)], 1, -1),
        5: ([ann(10, image=5), ann(2000, (0, 0, 50, 50), image=5), ann(3000, cat=18, image=5)], 1, 1),
        6: ([ann(3000, (0, 0, 60, 60), cat=18, image=6)], 0, 0),
    }
    coco = tmp_path / "coco"
    coco.mkdir()
    anns = [a for a, _, _ in expect.values() for a in a]
    (coco / "instances_train2014.json").write_text(json.dumps(_coco([1, 2, 3, 4], [a for a in anns if a["image_id"] <= 4])))
    (coco / "instances_val2014.json").write_text(json.dumps(_coco([5, 6], [a for a in anns if a["image_id"] > 4])))
    images = tmp_path / "all2014"
    images.mkdir()
    for i in expect:
        Image.new("RGB", (100, 100), (i * 40, 0, 0)).save(images / f"COCO_{i:012d}.jpg")
    out, mlperf = tmp_path / "vww", tmp_path / "vw_coco2014_96"
    counts = data.build_from_coco([coco / "instances_train2014.json", coco / "instances_val2014.json"], [2, 5],
                                  out, images, mlperf, progress=False)
    assert counts == {"train_images": 4, "train_person": 2, "val_images": 2, "val_person": 1,
                      "mlperf_person": 2, "mlperf_non_person": 2, "mlperf_dropped": 2}
    for split, ids in (("train", [1, 3, 4, 6]), ("val", [2, 5])):
        ds = data.load(out, split, resolution=32)
        assert (ds.format, ds.rule) == ("pyvww", "pyvww")
        assert ds.labels.tolist() == [expect[i][1] for i in ids]
        assert ds[0][0].shape == (3, 32, 32)
    ds = data.load(mlperf, "all", resolution=96)
    assert (ds.format, ds.rule) == ("mlperf", "mlperf")
    got = {int(f.stem.split("_")[1]): int(y) for f, y in zip(ds.files, ds.labels)}
    assert got == {i: m for i, (_, _, m) in expect.items() if m >= 0}
    assert ds.arrays()[0].shape == (4, 96, 96, 3)


# ------------------------------------------------------------------------------ synthetic stand-in
def test_visible_area_rule_with_occlusion():
    """The label follows visible pixels in the id buffer: a covered person is no person."""
    def scene(shapes, people):
        return scenes.Scene(((0, 0, 0), (9, 9, 9), 0.0, [np.zeros((3, 3), np.float32)], 0.1), shapes,
                          frozenset(people), (1, 1, 1), 0.0, 0.0, 0.0, 0)
    big = (1, "disc", (0.5, 0.5), 0.1, (200, 100, 50))             # about 3.1% of the image, box 4%
    small = (1, "disc", (0.5, 0.5), 0.03, (200, 100, 50))          # about 0.3%
    cover = (2, "poly", (0.3, 0.3, 0.7, 0.3, 0.7, 0.7, 0.3, 0.7), 0.0, (0, 0, 255))
    def top(y):  # an occluder over the top of the image, down to y
        return (2, "poly", (0.0, 0.0, 1.0, 0.0, 1.0, y, 0.0, y), 0.0, (0, 0, 255))
    cases = [([big], (1, 1)), ([small], (0, -1)), ([big, cover], (0, 0)), ([cover, big], (1, 1)),
             ([big, top(0.53)], (1, -1)),   # visible area about 1% > 0.5%, but its box about 1.3% < 2.5%
             ([big, top(0.57)], (0, -1))]   # a sliver: about 0.3% visible
    for shapes, (pyvww, mlperf) in cases:
        a = scenes.scene_annotations(scene(shapes, {1}))
        assert (data.pyvww_label(a, 96, 96), data.mlperf_label(a, 96, 96)) == (pyvww, mlperf), shapes
    assert scenes.scene_annotations(scene([big], set())) == []      # the same disc, not a person


def test_generator_is_deterministic_and_worker_independent():
    a = data.generate(300, 24, "train", 7, workers=1, progress=False)
    b = data.generate(300, 24, "train", 7, workers=2, progress=False)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    c = data.generate(40, 24, "val", 7, workers=1, progress=False)
    assert not np.array_equal(a[0][:40], c[0])                     # val is another stream
    assert 0.3 < a[1][:, 0].mean() < 0.7                           # both classes well represented


def test_one_scene_renders_at_any_resolution():
    lo, lab_lo, _ = data.generate(60, 32, "train", 3, workers=1, progress=False)
    hi, lab_hi, _ = data.generate(60, 96, "train", 3, workers=1, progress=False)
    assert np.array_equal(lab_lo, lab_hi)                          # labels do not depend on resolution
    down = np.stack([np.asarray(Image.fromarray(x).resize((32, 32), Image.BOX)) for x in hi]).astype(float)
    corr = [np.corrcoef(u.ravel(), v.ravel())[0, 1] for u, v in zip(down, lo.astype(float))]
    assert np.median(corr) > 0.9


def test_difficulty_changes_the_scenes():
    easy = scenes.make_scene(0, 1, 0.0)
    hard = scenes.make_scene(0, 1, 1.0)
    assert easy.noise < hard.noise or len(easy.shapes) != len(hard.shapes)


def test_synthetic_cache_serves_smaller_requests(tmp_path):
    ds = data.synthetic(40, 16, "train", 1, progress=False)
    files = list((tmp_path / "cache").glob("*.npz"))
    assert len(files) == 1
    small = data.synthetic(25, 16, "train", 1, progress=False)
    assert list((tmp_path / "cache").glob("*.npz")) == files       # no new file: read from the larger one
    assert np.array_equal(small.arrays()[0], ds.arrays()[0][:25]) and small.annotations == ds.annotations[:25]
    x, y = ds[3]
    assert x.shape == (3, 16, 16) and str(x.dtype) == "torch.float32" and y == ds.labels[3]


def test_to_tensor_is_the_int8_input_map():
    t = data.to_tensor(np.array([[[[0, 128, 255]]]], np.uint8))
    assert t.shape == (1, 3, 1, 1)
    assert t.flatten().tolist() == [-1.0, 0.0, 127 / 128]


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("fmt,split,labels", [("pyvww", "train", "pyvww"), ("mlperf", "all", "mlperf"),
                                              ("vww01", "val", "mlperf")])
def test_written_synthetic_reads_back_identically(tmp_path, fmt, split, labels):
    ds = data.synthetic(120, 32, "train", 5, progress=False)
    n = data.write(ds, tmp_path / fmt, fmt)
    back = data.load(tmp_path / fmt, split, resolution=32)
    assert data.detect(tmp_path / fmt) == fmt and back.format == fmt and back.rule == labels
    if labels == "pyvww":
        idx = np.arange(len(ds))
        expected = ds.labels
    else:
        idx = np.flatnonzero(ds.meta["mlperf_labels"] >= 0)
        expected = ds.meta["mlperf_labels"][idx]
    assert n == len(back) == len(idx) and 0 < expected.sum() < len(expected)
    names = [int(f.split("_")[-1].split(".")[0]) for f in (
        [p.name for p in back.files] if back.files is not None else
        [line.split(",")[0] for line in (tmp_path / fmt / "y_labels.csv").read_text().split()])]
    order = np.argsort(names)
    assert np.array_equal(np.asarray(names)[order], idx)
    assert np.array_equal(back.labels[order], expected)
    assert np.array_equal(back.arrays()[0][order], ds.arrays()[0][idx])    # pixels exact (PNG, raw)
    assert data.info(tmp_path / fmt)["rule"] == labels


def test_info_counts_and_sizes(tmp_path):
    ds = data.synthetic(50, 24, "train", 2, progress=False)
    data.write(ds, tmp_path, "pyvww")
    data.write(data.synthetic(20, 24, "val", 2, progress=False), tmp_path, "pyvww")
    d = data.info(tmp_path)
    assert d["format"] == "pyvww" and d["image_size"] == [[24, 24]]
    assert d["splits"]["train"] == {"images": 50, "person": int(ds.labels.sum()), "non_person": int(50 - ds.labels.sum())}
    assert d["splits"]["val"]["images"] == 20


# ------------------------------------------------------------------------------ errors
def test_missing_and_malformed_datasets_say_what_was_expected(tmp_path):
    with pytest.raises(UserError, match="expected one of: pyvww"):
        data.detect(tmp_path)
    with pytest.raises(UserError, match="not a folder"):
        data.load(tmp_path / "nope")
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train.json").write_text("{not json")
    with pytest.raises(UserError, match="malformed pyvww file"):
        data.load(tmp_path, "train")
    raw = _coco([1], [ann(900, image=1)])
    raw["categories"].append({"id": 3, "name": "car"})
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps(raw))
    with pytest.raises(UserError, match="build_vww.py"):
        data.load(tmp_path, "train")
    vww = _coco([1], [ann(900, image=1)])
    vww["categories"] = data.CATEGORIES
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps(vww))
    with pytest.raises(UserError, match="images.*missing"):
        data.load(tmp_path, "train")
    vww["annotations"].append(dict(ann(10, image=1), id=7))
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps(vww))
    with pytest.raises(UserError, match="at or below 0.5%"):
        data.load(tmp_path, "train")


def test_vww01_errors(tmp_path):
    np.zeros((8, 8, 3), np.uint8).tofile(tmp_path / "a.bin")
    (tmp_path / "y_labels.csv").write_text("a.bin,2,1\n")
    assert data.load(tmp_path, "val", 8).labels.tolist() == [1]
    with pytest.raises(UserError, match="evaluation set"):
        data.load(tmp_path, "train")
    (tmp_path / "y_labels.csv").write_text("a.bin,2,1\nb.bin,2,7\n")
    with pytest.raises(UserError, match="line 2"):
        data.load(tmp_path, "val")
    (tmp_path / "y_labels.csv").write_text("a.bin,2,1\nb.bin,2,0\n")
    np.zeros(10, np.uint8).tofile(tmp_path / "b.bin")
    with pytest.raises(UserError, match="b.bin"):
        data.load(tmp_path, "val")


def test_only_synthetic_sets_can_be_written(tmp_path):
    np.zeros((8, 8, 3), np.uint8).tofile(tmp_path / "a.bin")
    (tmp_path / "y_labels.csv").write_text("a.bin,2,0\n")
    with pytest.raises(UserError, match="only synthetic"):
        data.write(data.load(tmp_path, "val", 8), tmp_path / "out", "pyvww")


# ------------------------------------------------------------------------------ CLI and figure
def cli(*args):
    return subprocess.run([sys.executable, "-m", "mcunet_lite.cli", *args], capture_output=True, text=True)


def test_cli_synth_then_info(tmp_path):
    r = cli("data", "synth", "--n", "30", "--n-val", "10", "--resolution", "24", "--out", str(tmp_path / "v"),
            "--format", "pyvww", "--seed", "3", "--difficulty", "0.2")
    assert r.returncode == 0, r.stderr
    d = json.loads(cli("data", "info", str(tmp_path / "v"), "--json").stdout)
    assert d["format"] == "pyvww" and d["splits"]["train"]["images"] == 30 and d["splits"]["val"]["images"] == 10
    r = cli("data", "info", str(tmp_path / "v"))
    assert "label rule: person if any person segmentation area > 0.5%" in r.stdout
    r = cli("data", "info", str(tmp_path))
    assert r.returncode == 2 and "holds no Visual Wake Words data" in r.stderr and "Traceback" not in r.stderr


def test_contact_sheet_draws_both_classes_at_every_resolution():
    import matplotlib
    matplotlib.use("Agg")
    from mcunet_lite import viz
    fig = viz.contact_sheet(resolutions=(16, 32), n=2)
    assert len(fig.axes) == 2 * 4
    assert [ax.get_title() for ax in fig.axes[:4]] == ["person", "person", "no person", "no person"]
    assert "0.5%" in fig._suptitle.get_text()
