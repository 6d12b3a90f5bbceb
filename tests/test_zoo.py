"""Zoo: the direct Graph path agrees with torch.fx import of the torch module, op by op and numerically."""
import numpy as np
import pytest
import torch

from mcunet_lite import floatref, zoo
from mcunet_lite.errors import UserError
from mcunet_lite.from_torch import from_torch

CONFIGS = [("mbv2", 1.0, 224), ("mbv2", 0.35, 96), ("mbv1", 0.25, 96), ("resnet18", 1.0, 224),
           ("resnet18", 0.5, 64), ("mcunet", 0.5, 96), ("mcunet", 0.3, 80)]


def _signature(g):
    ops = [(o.kind, o.name, o.inputs, o.output, o.attrs) for o in g.ops]
    shapes = {n: (t.shape, t.const) for n, t in g.tensors.items()}
    return ops, shapes, g.inputs, g.outputs


@pytest.mark.parametrize("name,width,res", CONFIGS)
def test_direct_graph_equals_torch_import(name, width, res):
    cfg = zoo.get(name, width, res)
    assert _signature(cfg.graph()) == _signature(from_torch(cfg.module(), res))


def _randomize_bn(m):
    g = torch.Generator().manual_seed(0)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            mod.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            mod.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return m.eval()


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_imported_graph_computes_what_torch_computes(name):
    cfg = zoo.get(name, resolution=64)
    m = _randomize_bn(cfg.module())
    x = np.random.default_rng(1).random((2, 64, 64, 3), dtype=np.float32)
    with torch.no_grad():
        ref = m(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    got = floatref.run(from_torch(m, input_shape=(2, 3, 64, 64)), x)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_make_divisible_rounds_like_mobilenet_v2():
    assert [zoo.make_divisible(c * 0.35) for c in (32, 16, 24, 1280)] == [16, 8, 8, 448]
    assert zoo.make_divisible(32 * 1.4) == 48


def test_config_round_trip_and_file(tmp_path):
    cfg = zoo.mcunet_example()
    assert zoo.MBConvConfig.from_dict(cfg.to_dict()) == cfg
    import json
    f = tmp_path / "c.json"
    f.write_text(json.dumps(cfg.to_dict()))
    assert zoo.get("mcunet", config=f, resolution=128).resolution == 128


@pytest.mark.parametrize("kwargs,msg", [
    ({"name": "vgg"}, "valid models: mbv2"),
    ({"name": "mbv2", "width": 0}, "width must be > 0"),
    ({"name": "mbv2", "resolution": -3}, "resolution must be > 0"),
    ({"name": "resnet18", "resolution": 31}, "downsamples by 32"),
    ({"name": "mbv2", "config": "x.json"}, "use it with 'mcunet'"),
    ({"name": "mcunet", "config": "/nonexistent.json"}, "cannot read config"),
])
def test_bad_input_errors(kwargs, msg):
    with pytest.raises(UserError, match=msg):
        zoo.get(**kwargs)


def test_malformed_config_names_the_problem():
    d = zoo.mcunet_example().to_dict()
    d["stages"][1]["depth"] = 3
    with pytest.raises(UserError, match="stage 1: depth 3 but 2 blocks"):
        zoo.MBConvConfig.from_dict(d)
    del d["stages"][0]["width"]
    with pytest.raises(UserError, match="malformed MBConv config: 'width'"):
        zoo.MBConvConfig.from_dict(d)
