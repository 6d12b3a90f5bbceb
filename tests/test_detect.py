"""The detector: its graph (conv ops only, exact float import, int8 patch-based == layer by layer),
anchors, decoding as the exact inverse of the loss targets, training, checkpoints, CLI, photos."""
import json
import math

import numpy as np
import pytest
import torch

from interrupt import kill_after_first_checkpoint
from mcunet_lite import cli, deploy, detdata, detect, floatref, int8ref, patch, schedule, train
from mcunet_lite.errors import UserError

R = 64


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MCUNET_LITE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny():
    """A 64 px detector with fixed anchors and random weights (BatchNorm statistics from noise)."""
    cfg = detect.config(resolution=R, anchors=(((0.05, 0.05), (0.1, 0.1), (0.1, 0.25)),
                                               ((0.25, 0.25), (0.3, 0.6), (0.6, 0.8))))
    torch.manual_seed(0)
    m = detect.module(cfg).train()
    with torch.no_grad():
        m(torch.randn(16, 3, R, R))
    return m.eval(), cfg


def test_graph_is_convs_only_and_matches_torch(tiny):
    m, cfg = tiny
    g = detect.graph(m, cfg)
    assert {op.kind for op in g.ops} == {"conv2d", "add", "resize_nearest"}
    n = cfg.num_anchors * (5 + 2)
    assert [g.shape(o) for o in g.outputs] == [(1, 8, 8, n), (1, 4, 4, n)] and cfg.strides() == [8, 16]
    x = torch.randn(2, 3, R, R)
    for a, b in zip(floatref.run_all(g, x.permute(0, 2, 3, 1).numpy()), detect.head_outputs(m, x)):
        assert np.allclose(a, b, atol=1e-4)
    from mcunet_lite.from_torch import from_torch
    for up in (torch.nn.Upsample(scale_factor=1.5), torch.nn.Upsample(scale_factor=2, mode="bilinear")):
        with pytest.raises(UserError, match="unsupported layer Upsample"):
            from_torch(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), up), 8)
    with pytest.raises(UserError, match="multiple of the deepest head's stride"):
        detect.config(resolution=72)
    with pytest.raises(UserError, match="MBConv backbone"):
        detect.config("resnet18")
    for taps in ((4, 2), (), (2, 7)):
        with pytest.raises(UserError, match="increasing stage indices"):
            detect.config(taps=taps)


def test_int8_detector_schedules_and_runs_patch_by_patch_exactly(tiny):
    m, cfg = tiny
    rng = np.random.default_rng(0)
    calib = rng.uniform(-1, 1, (8, R, R, 3)).astype(np.float32)
    q = detect.quantized(m, cfg, calib)
    schedule.check(schedule.plan(q))
    plan = patch.plan(q, patch.split_after_block(q, 3), 2)
    x = rng.integers(-128, 128, (2, R, R, 3)).astype(np.int8)
    layer, patched = int8ref.run_all(q, x), patch.run_int8(plan, x)
    assert len(layer) == 2 and all(np.array_equal(a, b) for a, b in zip(layer, patched))
    xf = torch.from_numpy(calib[:2]).permute(0, 3, 1, 2)
    for a, b in zip(detect.int8_runner(q, plan)(xf), detect.head_outputs(m, xf)):
        assert np.abs(a - b).max() < 0.1 * np.abs(b).max()               # int8 follows float closely


def test_kmeans_anchors_find_the_clusters():
    rng = np.random.default_rng(1)
    centres = np.array([[0.05, 0.05], [0.2, 0.5], [0.6, 0.3]])
    wh = np.concatenate([c * np.exp(rng.normal(0, 0.05, (200, 2))) for c in centres])
    got = detect.kmeans_anchors(wh, 3)
    assert np.allclose(got, centres, rtol=0.05)                             # sorted by area
    with pytest.raises(UserError, match="cannot make 6 anchors"):
        detect.kmeans_anchors(wh[:5], 6)


def encode(cfg, boxes, labels):
    """Raw head maps that say exactly these boxes (the inverse of decoding), for one image."""
    anchors = np.asarray(cfg.anchors)
    outs = [np.full((1, cfg.resolution // s, cfg.resolution // s, cfg.num_anchors, 7), -12.0) for s in cfg.strides()]
    for (x0, y0, x1, y1), c in zip(np.asarray(boxes) / cfg.resolution, labels):
        w, h = x1 - x0, y1 - y0
        best = int(detect.wh_iou(np.array([[w, h]]), anchors.reshape(-1, 2)).argmax())
        s, a = divmod(best, cfg.num_anchors)
        n = outs[s].shape[1]
        cx, cy = (x0 + x1) / 2 * n, (y0 + y1) / 2 * n
        logit = lambda v: math.log(v / (1 - v))  # noqa: E731
        outs[s][0, int(cy), int(cx), a, :5] = [logit(cx % 1), logit(cy % 1), math.log(w / anchors[s, a, 0]),
                                               math.log(h / anchors[s, a, 1]), 12.0]
        outs[s][0, int(cy), int(cx), a, 5 + c] = 12.0
    return [o.reshape(*o.shape[:3], -1) for o in outs]


def test_decoding_inverts_the_loss_targets(tiny):
    """Head maps that encode the boxes decode to them exactly, and there the loss is at its minimum
    (zero gradient on every box term): targets and decoding follow one convention."""
    _, cfg = tiny
    boxes = np.array([[10, 12, 18, 19], [21, 5, 44, 50], [1, 40, 9, 47]], np.float64)
    labels = np.array([1, 0, 0])
    raw = encode(cfg, boxes, labels)
    d = detect.decode(raw, cfg, score_threshold=0.5)[0]
    order = np.argsort(d.boxes[:, 0])
    assert np.allclose(d.boxes[order], boxes[np.argsort(boxes[:, 0])], atol=1e-6)
    assert d.labels[order].tolist() == labels[np.argsort(boxes[:, 0])].tolist() and (d.scores > 0.99).all()
    top = detect.decode(raw, cfg, score_threshold=0.0, pre_nms=2)[0]    # only the 2 best candidates reach NMS
    assert len(top.boxes) == 2 and np.allclose(np.sort(top.scores), np.sort(d.scores)[-2:])
    outs = [torch.tensor(r, dtype=torch.float32).permute(0, 3, 1, 2).requires_grad_() for r in raw]
    total, parts = detect.loss(outs, [torch.tensor(boxes, dtype=torch.float32)], [torch.tensor(labels)], cfg)
    total.backward()
    assert max(float(o.grad.abs().max()) for o in outs) < 1e-3
    shifted = [o.detach() + 0.5 for o in outs]
    assert detect.loss(shifted, [torch.tensor(boxes, dtype=torch.float32)], [torch.tensor(labels)], cfg)[0] > total
    empty = detect.loss(outs, [torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)], cfg)[1]
    assert empty["box"] == empty["cls"] == 0.0 and empty["obj"] > 0


def test_training_lowers_the_loss_and_checkpoints_round_trip(tmp_path):
    ds = detdata.synthetic(16, 48, "train", 0, progress=False)
    cfg = detect.fit_anchors(detect.config(resolution=48), ds)
    assert len(cfg.anchors) == 2 and np.prod(cfg.anchors[0][0]) <= np.prod(cfg.anchors[1][0])
    torch.manual_seed(0)
    m = detect.module(cfg)
    h = detect.fit(m, cfg, ds, epochs=20, batch_size=16, lr=5e-3, warmup=3, progress=False)  # one batch, 20 steps
    assert h[-1]["loss"] < 0.8 * h[0]["loss"]
    detect.save(tmp_path / "d.pt", m, cfg, {"seed": 0})
    back, cfg2, meta = detect.load(tmp_path / "d.pt")
    x = torch.stack([ds[i][0] for i in range(4)])
    assert cfg2 == cfg and meta == {"seed": 0}
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(detect.head_outputs(m.eval(), x), detect.head_outputs(back, x)))
    r = detect.evaluate(m, cfg, ds)
    assert set(r["classes"]) == {"person", "face"} and 0 <= r["map"] <= 1
    with pytest.raises(UserError, match="cannot load detector checkpoint"):
        detect.load(tmp_path / "nope.pt")


def test_train_resumes_an_interrupted_run_exactly(tmp_path, monkeypatch):
    """Killed after epoch 1, `detect.train(resume=True)` ends where an uninterrupted run ends."""
    args = dict(resolution=48, epochs=3, batch_size=8, n_train=24, n_val=8, progress=False)
    whole = detect.train(**args, out=tmp_path / "a.pt")
    kill_after_first_checkpoint(monkeypatch, lambda: detect.train(**args, out=tmp_path / "b.pt"))
    assert train.resume_path(tmp_path / "b.pt").exists()
    resumed = detect.train(**args, out=tmp_path / "b.pt", resume=True)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in whole["history"]]
    assert resumed["val"] == whole["val"] and not train.resume_path(tmp_path / "b.pt").exists()


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_predict_on_real_photos(tiny, name):
    m, cfg = tiny
    if name == "astronaut":
        pytest.importorskip("skimage", reason="scikit-image (the labs extra) ships the astronaut photo")
    img = detect.photo(name)
    d = detect.predict(m, cfg, img, score_threshold=0.0)
    assert len(d.boxes) > 0 and (d.scores >= 0).all()
    assert np.allclose(detdata.letterbox_boxes(d.boxes, img.shape[:2], R), detect.decode(
        detect.head_outputs(m, detdata.data.to_tensor(detdata.letterbox(img, R))[None]), cfg, 0.0)[0].boxes)
    assert detect.draw(img, d).size == img.shape[1::-1]
    with pytest.raises(UserError, match="cannot read image"):
        detect.photo("no-such-photo.jpg")


def test_cli_train_eval_predict(tmp_path, capsys):
    ck, png = str(tmp_path / "det.pt"), str(tmp_path / "grace_hopper.png")
    args = ["detect", "train", "--resolution", "32", "--n-train", "48", "--n-val", "16", "--epochs", "1",
            "--batch-size", "16", "--out", ck, "--json"]
    assert cli.main(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["resolution"] == 32 and r["n_train"] == 48 and set(r["val"]["classes"]) == {"person", "face"}
    assert cli.main(["detect", "eval", ck, "--n", "16", "--json"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert e["map"] == pytest.approx(r["val"]["map"]) and e["arithmetic"] == "float"   # same val stream
    assert cli.main(["detect", "eval", ck, "--n", "8", "--int8", "--calib-n", "8", "--resolution", "48"]) == 0
    assert "48px, int8" in capsys.readouterr().out
    coco = str(tmp_path / "coco")
    assert cli.main(["detect", "synth", "--n", "16", "--resolution", "32", "--out", coco]) == 0
    assert "instances_val.json" in capsys.readouterr().out
    assert cli.main(["detect", "eval", ck, "--data", coco, "--json"]) == 0        # the same scenes, as files
    assert json.loads(capsys.readouterr().out)["map"] == pytest.approx(e["map"])
    assert cli.main(["detect", "predict", ck, "grace_hopper", "--out", png, "--score", "0", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["size"] == [600, 512] and len(p["detections"]) > 0
    from PIL import Image
    assert Image.open(png).size == (512, 600)
    assert cli.main(["detect", "predict", ck, str(tmp_path / "none.jpg")]) == 2
    assert cli.main(["detect", "eval", ck, "--data", str(tmp_path)]) == 2
    assert "holds no detection data" in capsys.readouterr().err


@pytest.mark.skipif(deploy.toolchain_missing() is not None, reason=str(deploy.toolchain_missing()))
def test_detector_deploys_patch_based_on_the_emulated_stm32(tiny, tmp_path):
    m, cfg = tiny
    q = detect.quantized(m, cfg, np.random.default_rng(0).uniform(-1, 1, (4, R, R, 3)).astype(np.float32))
    r = deploy.deploy(q, "stm32f746", "qemu", patch_plan=patch.plan(q, patch.split_after_block(q, 3), 2),
                      out=tmp_path, n_random=1)
    assert r.outputs_match and r.mode == "patch"
