"""The README's "Bring your own network" block runs as written and computes what it says."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).parents[1] / "README.md"


def _block(heading: str) -> str:
    text = README.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_bring_your_own_network_block():
    ns: dict = {}
    exec(compile(_block("Bring your own network"), "README.md", "exec"), ns)
    model, x = ns["model"], ns["x"]
    assert model.params is not model.state and "mean" in str(model.state)  # batch statistics live in state
    assert ns["saliency"].shape == (4, 28, 28) and ns["cam"].shape == (4, 28, 28)
    assert not np.allclose(ns["saliency"][0], ns["saliency"][1])
    assert ns["vgg"].num_classes is None
    for name, shape in (("style_grad", (1, 64, 64, 3)), ("data_grad", x.shape)):
        g = np.asarray(ns[name])
        assert g.shape == shape and np.all(np.isfinite(g)) and np.abs(g).max() > 0, name
