"""Small spec texts the search tests run every searcher over."""

from __future__ import annotations

import archc

SPECS = {
    # choice / int / bool / one_of, and a float range
    "flat": """
space flat {
    input x: float[16]
    linear(choice(8, 16, 32))
    one_of act {
        mlp(ratio = 2)
        moe(experts = choice(4, 8))
    }
    optional { dropout(float(0.0..0.5)) }
    mlp(ratio = int(1..4))
}
""",
    # variable repeat with per-copy decisions, a log float in train { }
    "deep": """
space deep {
    input x: float[16]
    repeat layers in int(1..3) {
        residual { mlp(ratio = choice(2, 4), activation = choice("gelu", "swiglu")) }
    }
    hyper(mix = one_of(hc(dynamic = bool), mhc(iters = int(5..20)))) { mlp }
}
train {
    lr = float(1e-4..1e-2, log)
}
""",
    # two points only: searchers must not get stuck
    "tiny": """
space tiny {
    input x: float[16]
    linear(choice(8, 16))
}
""",
}


def space(name: str) -> archc.Space:
    return archc.loads(SPECS[name])


def tiny_digits(epochs: int = 1, lrs: str = "choice(0.003, 0.03)", extra: str = "") -> str:
    """A digits space small enough to train a few trials in seconds: two widths, an optional
    block, and a learning-rate decision; `extra` adds statements to the space (a `require`)."""
    return f"""\
space tiny {{
    input image: float[1, 8, 8]
    conv2d(choice(8, 16), k = 3)
    relu
    optional {{ conv_bn_relu(k = 3) }}
    classifier(task.classes)
{extra}}}
train {{
    lr = {lrs}
    epochs = {epochs}
}}
"""
