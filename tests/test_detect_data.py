"""Detection data: person and head boxes from synthetic scenes (visibility rule), COCO JSON round
trip, WIDER Face and COCO loaders on fixtures written here, letterboxing, clear errors."""
import json

import numpy as np
import pytest
from PIL import Image

from mcunet_lite import detdata, scenes
from mcunet_lite.errors import UserError

PX = 1 / detdata.BOX_RES


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MCUNET_LITE_CACHE", str(tmp_path / "cache"))


def scene(shapes, people=(1,)):
    return scenes.Scene(((0, 0, 0), (9, 9, 9), 0.0, [np.zeros((3, 3), np.float32)], 0.1), shapes,
                      frozenset(people), (1, 1, 1), 0.0, 0.0, 0.0, 0)


def person(oid=1, x=0.5, y=0.5, r=0.1):
    """A person's parts in generator order: torso chain, head disc, hair disc, two eyes."""
    c = (200, 150, 100)
    return [(oid, "chain", (x, y + r, x, y + 4 * r), r / 2, c), (oid, "disc", (x, y), r, c),
            (oid, "disc", (x, y - 0.6 * r), 0.8 * r, (20, 20, 20)),
            (oid, "disc", (x - 0.4 * r, y), 0.2 * r, (0, 0, 0)), (oid, "disc", (x + 0.4 * r, y), 0.2 * r, (0, 0, 0))]


def boxes_of(s):
    rows = detdata.scene_boxes(s)
    return {int(c): r[1:5] for c, *_ in rows for r in [rows[rows[:, 0] == c][0]]}, rows


def top(oid, y):
    """An occluder over the top of the image, down to y."""
    return (oid, "poly", (0.0, 0.0, 1.0, 0.0, 1.0, y, 0.0, y), 0.0, (0, 0, 255))


# ------------------------------------------------------------------------------ synthetic boxes
def test_head_box_is_the_visible_head_disc():
    b, _ = boxes_of(scene(person()))
    assert np.allclose(b[1], [0.4, 0.4, 0.6, 0.6], atol=2 * PX)            # own hair and eyes do not cut it
    assert np.allclose(b[0][[0, 2, 3]], [0.4, 0.6, 0.5 + 0.4 + 0.05], atol=2 * PX)
    assert b[0][1] < 0.4 - 0.01                                             # the person box includes the hair
    b, _ = boxes_of(scene(person() + [top(2, 0.5)]))                        # a later occluder cuts both boxes
    assert np.allclose(b[1], [0.4, 0.5, 0.6, 0.6], atol=2 * PX) and b[0][1] == pytest.approx(0.5, abs=2 * PX)
    b, _ = boxes_of(scene([top(2, 0.5)] + [(oid + 2, *s) for oid, *s in person()], people=(3,)))
    assert np.allclose(b[1], [0.4, 0.4, 0.6, 0.6], atol=2 * PX)            # one drawn before it is behind it
    b, _ = boxes_of(scene(person(x=0.02)))                                  # the border cuts the box
    assert b[1][0] == 0.0 and b[1][2] == pytest.approx(0.12, abs=2 * PX)
    _, rows = boxes_of(scene(person() + [top(2, 0.7)]))                     # head hidden: only the person's box
    assert rows[:, 0].tolist() == [0]
    assert len(detdata.scene_boxes(scene(person(), people=()))) == 0        # the same parts, not a person


def test_two_people_hide_each_others_heads():
    front = [(oid + 1, *s) for oid, *s in person(x=0.55)]                   # drawn later, over person 1's head
    rows = detdata.scene_boxes(scene(person(x=0.45) + front, people=(1, 2)))
    heads = rows[rows[:, 0] == 1]
    assert len(heads) == 2
    assert heads[0, 3] == pytest.approx(0.5, abs=2 * PX)                   # cut where the two head discs cross
    assert np.allclose(heads[1, 1:5], [0.45, 0.4, 0.65, 0.6], atol=2 * PX)             # the front head is whole


def test_generated_boxes_are_consistent_and_resolution_free():
    lo, hi = detdata.synthetic(60, 32, "train", 3, progress=False), detdata.synthetic(60, 64, "train", 3, progress=False)
    assert all(np.allclose(2 * a, b) for a, b in zip(lo.boxes, hi.boxes))
    people = heads = 0
    for i in range(60):
        s = scenes.make_scene(3, i, 0.5, "train")
        b, lab = hi.boxes[i], hi.labels[i]
        people += len(s.people)
        heads += int((lab == 1).sum())
        assert (lab == 0).sum() == len(scenes.scene_annotations(s)) <= len(s.people)
        for f in b[lab == 1]:                                                # every face lies inside a person box
            assert any(np.all(f[:2] >= p[:2] - 1e-9) and np.all(f[2:] <= p[2:] + 1e-9) for p in b[lab == 0])
        assert np.all(hi.areas[i] <= (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) + 1e-9)
    assert 0 < heads <= people
    x, bx, lab = hi[5]
    assert x.shape == (3, 64, 64) and bx.shape == (len(lab), 4) and str(bx.dtype) == "torch.float32"


def test_boxes_are_cached_and_serve_smaller_requests(tmp_path):
    a = detdata.synthetic_boxes(30, "val", 1)
    files = sorted((tmp_path / "cache").glob("detboxes-*.npz"))
    assert len(files) == 1
    b = detdata.synthetic_boxes(20, "val", 1)
    assert sorted((tmp_path / "cache").glob("detboxes-*.npz")) == files
    assert all(np.array_equal(u, v) for u, v in zip(a[:20], b))
    assert all(np.array_equal(u, v) for u, v in zip(b, detdata.synthetic_boxes(20, "val", 1, cache=False)))


def test_crowd_scenes_hold_more_and_smaller_faces():
    """The detection benchmark's crowds (like WIDER Face): several figures, most faces small."""
    plain, crowd = (detdata.synthetic_boxes(80, "val", 2, cache=False, crowd=c) for c in (False, True))
    faces = [np.concatenate([r[r[:, 0] == 1, 5] for r in rows]) for rows in (plain, crowd)]
    assert len(faces[1]) > 2 * len(faces[0]) and np.median(faces[1]) < np.median(faces[0]) / 3
    ds = detdata.load("synthetic-crowd", "val", 64, n=12, seed=2, progress=False)
    assert ds.meta["crowd"] and all(np.allclose(b[:, 1:5] * 64, c) for b, c in zip(crowd[:12], ds.boxes))


def test_coco_json_round_trip(tmp_path):
    ds = detdata.synthetic(40, 48, "val", 2, progress=False)
    path = detdata.write_coco(ds, tmp_path / "synth")
    js = json.loads(path.read_text())
    assert {c["id"]: c["name"] for c in js["categories"]} == {1: "person", 2: "face"}
    a = js["annotations"][0]
    k = next(i for i in range(len(ds)) if len(ds.boxes[i]))
    assert a["image_id"] == k and a["category_id"] == int(ds.labels[k][0]) + 1 and a["iscrowd"] == 0
    x0, y0, x1, y1 = ds.boxes[k][0]
    assert a["bbox"] == pytest.approx([x0, y0, x1 - x0, y1 - y0]) and 0 < a["area"] <= a["bbox"][2] * a["bbox"][3]
    back = detdata.load(tmp_path / "synth", "val", 48)
    assert back.format == "coco" and back.classes == ("person", "face") and len(back) == len(ds)
    for i in range(len(ds)):
        assert np.allclose(back.boxes[i], ds.boxes[i]) and np.array_equal(back.labels[i], ds.labels[i])
        assert np.array_equal(back.image(i), ds.image(i))


# ------------------------------------------------------------------------------ real layouts
def write_wider(root, split="val"):
    """A WIDER Face fixture: 3 images of different sizes, one with no face, one invalid face."""
    (root / "wider_face_split").mkdir(parents=True)
    images = root / f"WIDER_{split}" / "images"
    entries = [("0--Parade/0_Parade_a.jpg", (200, 100), ["10 20 30 40 0 0 0 0 0 0", "50 5 8 0 2 0 0 1 0 0"]),
               ("1--Handshaking/1_b.jpg", (64, 64), []),
               ("1--Handshaking/1_c.jpg", (100, 300), ["0 0 50 60 1 0 0 0 1 0"])]
    lines = []
    for name, (w, h), rows in entries:
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h), (90, 60, 30)).save(images / name)
        lines += [name, str(len(rows))] + (rows or ["0 0 0 0 0 0 0 0 0 0 "])
    gt = root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt"
    gt.write_text("\n".join(lines) + "\n")
    return gt


def test_wider_face_parses_exactly(tmp_path):
    gt = write_wider(tmp_path)
    entries = detdata.read_wider_gt(gt)
    assert [n for n, _ in entries] == ["0--Parade/0_Parade_a.jpg", "1--Handshaking/1_b.jpg", "1--Handshaking/1_c.jpg"]
    assert entries[0][1].tolist() == [[10, 20, 30, 40, 0, 0, 0, 0, 0, 0], [50, 5, 8, 0, 2, 0, 0, 1, 0, 0]]
    assert entries[1][1].shape == (0, 10)                                   # the row of zeros is no face
    ds = detdata.load(tmp_path, "val", 100)
    assert ds.format == "wider" and ds.classes == ("face",) and len(ds) == 3
    assert ds.boxes[0].tolist() == [[10, 20, 40, 60], [50, 5, 58, 5]] and ds.ignore[0].tolist() == [False, True]
    assert ds.labels[2].tolist() == [1] and ds.size(0) == (100, 200) and ds.size(2) == (300, 100)
    x, bx, lab = ds[0]                                                       # 200x100 -> scale 0.5, 25 px pad on top
    assert x.shape == (3, 100, 100) and bx.tolist() == [[5.0, 35.0, 20.0, 55.0]] and lab.tolist() == [1]
    assert np.allclose(ds.from_input(0, ds.to_input(0, ds.boxes[0])), ds.boxes[0])
    img = ds.image(0)
    assert (img[:25] == detdata.PAD).all() and (img[25:75] != detdata.PAD).any() and (img[75:] == detdata.PAD).all()
    assert ds.counts() == {"face": 2}


@pytest.mark.parametrize("text,match", [
    ("a.jpg\n1\n1 2 3 4 0 0 0 0 0\n", "line 3: expected 10 integers"),
    ("a.jpg\nx\n", "line 1: the face count"),
    ("a.jpg\n0\n1 2 3 4 0 0 0 0 0 0\n", "must be all zeros"),
    ("a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n", "line 4: expected 10 integers.*end of file"),
    ("1 2 3 4\n", "expected an image path"),
])
def test_wider_face_format_errors_name_the_line(tmp_path, text, match):
    p = tmp_path / "gt.txt"
    p.write_text(text)
    with pytest.raises(UserError, match=match):
        detdata.read_wider_gt(p)


def test_missing_wider_parts_say_what_was_expected(tmp_path):
    with pytest.raises(UserError, match="not a folder.*wider_face_val_bbx_gt.txt"):
        detdata.load_wider(tmp_path / "nope")
    (tmp_path / "wider_face_split").mkdir()
    with pytest.raises(UserError, match="wider_face_train_bbx_gt.txt' is missing; expected"):
        detdata.load(tmp_path, "train")
    gt = write_wider(tmp_path / "w")
    (gt.parents[1] / "WIDER_val" / "images" / "1--Handshaking" / "1_b.jpg").unlink()
    with pytest.raises(UserError, match="1 image.*1_b.jpg"):
        detdata.load(tmp_path / "w", "val")
    with pytest.raises(UserError, match="'test'"):
        detdata.load_wider(tmp_path / "w", "test")
    with pytest.raises(UserError, match="holds no detection data"):
        detdata.load(tmp_path / "w" / "WIDER_val")


def test_coco_person_boxes(tmp_path):
    images = tmp_path / "val2017"
    images.mkdir()
    for i, (w, h) in ((1, (64, 48)), (2, (32, 32))):
        Image.new("RGB", (w, h)).save(images / f"{i:012d}.jpg")
    coco = {"images": [{"id": 1, "file_name": "000000000001.jpg", "height": 48, "width": 64},
                       {"id": 2, "file_name": "000000000002.jpg", "height": 32, "width": 32}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20], "area": 150, "iscrowd": 0},
                            {"id": 2, "image_id": 1, "category_id": 18, "bbox": [5, 5, 5, 5], "area": 25, "iscrowd": 0},
                            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [30, 0, 30, 40], "area": 900, "iscrowd": 1}],
            "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}]}
    path = tmp_path / "instances_val2017.json"
    path.write_text(json.dumps(coco))
    ds = detdata.load(path, "val", 64, images=images)
    assert ds.classes == ("person",) and len(ds) == 2 and len(ds.boxes[1]) == 0   # images without people stay
    assert ds.boxes[0].tolist() == [[1, 2, 11, 22], [30, 0, 60, 40]] and ds.ignore[0].tolist() == [False, True]
    _, bx, lab = ds[0]
    assert bx.tolist() == [[1.0, 10.0, 11.0, 30.0]] and lab.tolist() == [0]       # crowd left out; 8 px pad on top
    with pytest.raises(UserError, match="image folder"):
        detdata.load(path, "val", images=tmp_path / "nope")
    with pytest.raises(UserError, match="--images"):
        detdata.load(path, "val")
    with pytest.raises(UserError, match="annotation file.*missing"):
        detdata.load_coco(tmp_path / "nope.json", images)
    path.write_text(json.dumps(dict(coco, categories=[{"id": 18, "name": "dog"}])))
    with pytest.raises(UserError, match="none of the categories"):
        detdata.load(path, "val", images=images)
    path.write_text("{")
    with pytest.raises(UserError, match="malformed COCO"):
        detdata.load(path, "val", images=images)
    (images / "000000000002.jpg").unlink()
    path.write_text(json.dumps(coco))
    with pytest.raises(UserError, match="1 image.*000000000002.jpg"):
        detdata.load(path, "val", images=images)
