"""Hypothesis strategies for random graphs, shared by the planner and patch tests."""
import hypothesis.strategies as st

from mcunet_lite.ir import Graph


@st.composite
def random_graphs(draw):
    """Random DAGs of pointwise / depthwise convs and adds over a few feature-map sizes."""
    g = Graph("random")
    hw = draw(st.sampled_from([4, 6, 8]))
    tensors = [g.add_input("input", (1, hw, hw, draw(st.integers(1, 6))))]
    for i in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["pw", "dw", "dw2", "add"]))
        x = draw(st.sampled_from(tensors))
        if kind == "pw":
            y = g.conv2d(x, draw(st.integers(1, 8)), 1, name=f"op{i}")
        elif kind.startswith("dw"):
            y = g.conv2d(x, g.shape(x)[-1], 3, 2 if kind == "dw2" else 1, groups=g.shape(x)[-1], name=f"op{i}")
        else:
            same = [t for t in tensors if g.shape(t) == g.shape(x)]
            y = g.add_op("add", f"op{i}", [x, draw(st.sampled_from(same))], {"act": None})
        tensors.append(y)
    g.outputs.append(tensors[-1])
    return g
