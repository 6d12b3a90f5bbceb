"""Graph IR shape inference and the torch.fx importer's coverage and error messages."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mcunet_lite import floatref
from mcunet_lite.errors import UserError
from mcunet_lite.from_torch import from_torch
from mcunet_lite.ir import Graph, GraphError, same_pads


def test_shape_inference_conv_pool_pad_reshape():
    g = Graph()
    x = g.add_input("input", (1, 16, 16, 4))
    y = g.conv2d(x, 8, 3, stride=2, pads=(0, 1, 0, 1), name="c")
    assert g.shape(y) == (1, 8, 8, 8)
    y = g.pool("maxpool", y, 2, 2, name="p")
    assert g.shape(y) == (1, 4, 4, 8)
    y = g.add_op("pad", "pad", [y], {"paddings": ((0, 0), (1, 2), (0, 0), (0, 0))})
    assert g.shape(y) == (1, 7, 4, 8)
    assert g.shape(g.add_op("reshape", "r", [y], {"shape": (1, -1)})) == (1, 224)


@pytest.mark.parametrize("build,msg", [
    (lambda g, x: g.conv2d(x, 8, 3, groups=3), "groups=3 does not divide 4"),
    (lambda g, x: g.conv2d(x, 8, 7, pads=(0, 0, 0, 0), name="big"), "input 5x5 .* smaller than its 7x7 window"),
    (lambda g, x: g.add_op("add", "a", [x, g.conv2d(x, 2, 1)], {}), "operand shapes differ"),
    (lambda g, x: g.linear(x, 3), "flatten the feature map first"),
    (lambda g, x: g.add_op("reshape", "r", [x], {"shape": (1, 7)}), "cannot reshape"),
    (lambda g, x: g.add_op("gelu", "z", [x], {}), "unknown kind 'gelu'"),
    (lambda g, x: g.add_op("add", "z", [x, "nope"], {}), r"unknown input tensor\(s\) \['nope'\]"),
    (lambda g, x: g.conv2d(x, 4, 1, act="swish", name="s"), "unsupported activation 'swish'"),
])
def test_shape_errors_are_clear(build, msg):
    g = Graph()
    x = g.add_input("input", (1, 5, 5, 4))
    with pytest.raises(GraphError, match=msg):
        build(g, x)


def test_same_pads_puts_extra_row_after():
    assert same_pads(224, 3, 2) == (0, 1)
    assert same_pads(225, 3, 2) == (1, 1)
    assert same_pads(7, 5, 1) == (2, 2)


class Odd(nn.Module):
    """Exercises the importer's less common paths: size()/view, ZeroPad2d, padding='same',
    adaptive pooling, functional relu, softmax."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.c1 = nn.Conv2d(3, 8, 3, 2, bias=True)
        self.c2 = nn.Conv2d(8, 8, 5, padding="same")
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.AvgPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)
        self.sm = nn.Softmax(dim=1)

    def forward(self, x):
        x = F.relu(self.c1(self.pad(x)))
        x = F.relu6(self.bn(self.c2(x)))
        x = self.gap(self.pool(x))
        return self.sm(self.fc(x.view(x.size(0), -1)))


def test_importer_less_common_layers_numerically():
    m = Odd().eval()
    g = from_torch(m, 16)
    assert [o.kind for o in g.ops] == ["pad", "conv2d", "conv2d", "avgpool", "mean", "reshape", "linear", "softmax"]
    x = np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32)
    with torch.no_grad():
        ref = m(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(floatref.run(g, x), ref, rtol=1e-5, atol=1e-6)


class WithGelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU())

    def forward(self, x):
        return self.blocks(x)


class WithSigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.sigmoid(self.body(x))


class BranchyRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        y = self.c(x)
        return torch.relu(y) + y


@pytest.mark.parametrize("model,msg", [
    (WithGelu(), "unsupported layer GELU at module path 'blocks.1'"),
    (WithSigmoid(), "unsupported function sigmoid"),
    (BranchyRelu(), "standalone relu"),
])
def test_unsupported_ops_name_themselves(model, msg):
    with pytest.raises(UserError, match=msg):
        from_torch(model, 8)
