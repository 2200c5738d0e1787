"""The Space's semantics, construct by construct: decision paths, sizes, ties, sharing,
constraints, enumeration order, the sequential view and neighbourhoods."""

from __future__ import annotations

import math
import random

import pytest

import archc
from archc.errors import PointError, SpaceError


def space_of(body: str, extra: str = "") -> archc.Space:
    text = f"{extra}\nspace s {{\n    input x: float[16]\n{body}\n}}\n"
    return archc.loads(text)


def paths(space: archc.Space) -> list[str]:
    return [p for p, _ in space.decisions()]


@pytest.mark.parametrize("body, extra, expected", [
    ("linear(choice(8, 16))\nlinear(choice(8, 16))", "", ["linear.out", "linear#2.out"]),
    ("let d = choice(8, 16)\nlinear(d)\nlinear(d)", "", ["d"]),
    ("moe(experts = choice(4, 8), expert = mlp(ratio = choice(2, 4)))", "",
     ["moe.experts", "moe.expert.ratio"]),
    ("hyper(mix = one_of(hc(dynamic = bool), mhc(iters = int(5..20)))) { mlp }", "",
     ["hyper.mix", "hyper.mix.hc.dynamic", "hyper.mix.mhc.iters"]),
    ("repeat layers in int(1..3) { mlp(ratio = choice(2, 4)) }", "",
     ["layers", "layers[*].mlp.ratio"]),
    ("repeat layers in int(1..3) share = arch { mlp(ratio = choice(2, 4)) }", "",
     ["layers", "layers.mlp.ratio"]),
    ("one_of {\n mlp(ratio = choice(2, 4))\n moe(experts = choice(4, 8))\n}", "",
     ["one_of", "mlp.ratio", "moe.experts"]),
    ("optional drop { dropout(float(0.0..0.5)) }", "", ["drop", "dropout.p"]),
    ("stage(choice(8, 16))\nstage(32)", "def stage(w) { linear(w)\n mlp(ratio = choice(2, 4)) }",
     ["stage.w", "stage.mlp.ratio", "stage#2.mlp.ratio"]),
    ("a = op(x)\nb = op(x) + op(a)", "def op = one_of(skip = identity, lin = linear(16))",
     ["a.op", "b.op", "b.op#2"]),
])
def test_decision_paths_follow_the_naming_rules(body: str, extra: str, expected: list[str]
                                                ) -> None:
    assert paths(space_of(body, extra)) == expected


def test_editing_one_part_keeps_the_other_paths() -> None:
    before = space_of("linear(choice(8, 16))\nmlp(ratio = choice(2, 4))")
    after = space_of("attention(heads = choice(2, 4))\nlinear(choice(8, 16))\n"
                     "mlp(ratio = choice(2, 4))")
    assert set(paths(before)) <= set(paths(after))


@pytest.mark.parametrize("body, size", [
    ("linear(choice(8, 16, 32))", 3),
    ("optional { linear(choice(8, 16)) }", 1 + 2),
    ("one_of {\n linear(choice(8, 16))\n mlp(ratio = int(1..3))\n identity\n}", 2 + 3 + 1),
    ("repeat n in int(0..2) { linear(choice(8, 16)) }", 1 + 2 + 4),
    ("repeat n in int(0..2) share = arch { linear(choice(8, 16)) }", 3 * 2),
    ("repeat n in choice(1, 3) share = weights { linear(choice(8, 16)) }", 2 * 2),
    ("repeat 3 { linear(choice(8, 16)) }", 2 ** 3),
    ("let d = choice(8, 16)\nrepeat 3 { linear(d) }", 2),
    ("linear(int(8..64, step = 8))", 8),
    ("linear(16)\ndropout(float(0.0..0.5))", 1),
])
def test_size_counts_points(body: str, size: int) -> None:
    space = space_of(body)
    assert space.size == size
    if not space.continuous:
        assert sum(1 for _ in space.enumerate(constrained=False)) == size


def test_size_is_exact_for_huge_spaces() -> None:
    space = space_of("repeat n in int(0..200) { linear(int(1..1000)) }")
    assert space.size == sum(1000 ** n for n in range(201))
    assert abs(space.log10_size - (600 + math.log10(1 / (1 - 1e-3)))) < 1e-9
    space.sample(seed=1, uniform="arch")  # integer weights: no overflow


def test_enumeration_is_canonical_and_complete() -> None:
    space = space_of("optional { linear(choice(8, 16)) }\nmlp(ratio = choice(2, 4))")
    points = [dict(p) for p in space.enumerate()]
    assert points[0] == {"optional": False, "mlp.ratio": 2}
    assert len(points) == len({archc.Point(p) for p in points}) == space.size == 6


def test_enumeration_refuses_continuous_and_huge_spaces() -> None:
    with pytest.raises(SpaceError, match="continuous"):
        list(space_of("dropout(float(0.0..0.5))").enumerate())
    with pytest.raises(SpaceError, match="limit"):
        list(space_of("repeat 30 { linear(choice(8, 16)) }").enumerate())


def test_requires_hold_for_every_sample_and_prune_enumeration() -> None:
    space = space_of("let d = choice(64, 96, 128)\nlet heads = choice(2, 3, 4)\n"
                     "require d % heads == 0\nattention(heads = heads)")
    assert space.size == 9
    ok = [p for p in space.enumerate()]
    assert len(ok) == 7  # 64 % 3 and 128 % 3 fail
    rng = random.Random(0)
    for _ in range(200):
        p = space.sample(rng, uniform="arch")
        assert p["d"] % p["heads"] == 0


def test_require_over_a_let_computed_from_decisions() -> None:
    space = space_of("let d = choice(32, 64)\nlet h = d // 16\nrequire h >= 3\nlinear(d)")
    assert [dict(p) for p in space.enumerate()] == [{"d": 64}]


def test_require_inside_a_repeat_applies_to_each_copy() -> None:
    space = space_of("repeat n in int(1..2) {\n let w = choice(8, 16)\n require w > 8\n"
                     " linear(w)\n}")
    assert all(v == 16 for p in space.enumerate() for k, v in p.items() if k != "n")


def test_require_over_task_constants_waits_for_the_task() -> None:
    space = space_of("let w = choice(8, 16)\nrequire w <= task.classes\nlinear(w)")
    assert space.sample(seed=0)  # unknown task: not judged yet
    with pytest.raises(SpaceError, match="no sampled point satisfies"):
        space.sample(seed=0, task={"classes": 4})
    assert space.sample(seed=0, task={"classes": 10})["w"] == 8


def test_deferred_requires_are_kept_for_the_compiler() -> None:
    space = space_of("require params < 2e6\nlinear(choice(8, 16))")
    (req,) = space.requires
    assert req.deferred and req.text == "params < 2e6"


def test_validate_reports_every_problem_together() -> None:
    space = space_of("let d = choice(8, 16)\noptional { linear(d) }\nmlp(ratio = choice(2, 4))")
    with pytest.raises(PointError) as err:
        space.validate({"d": 12, "optional": False, "bogus": 1})
    text = err.value.render()
    assert "'d' = 12 is not in choice(8, 16)" in text
    assert "missing decision 'mlp.ratio'" in text
    assert "'bogus' is not a decision" in text


def test_validate_names_inactive_decisions() -> None:
    space = space_of("one_of {\n linear(choice(8, 16))\n mlp(ratio = choice(2, 4))\n}")
    with pytest.raises(PointError, match="not active"):
        space.validate({"one_of": "linear", "linear.out": 8, "mlp.ratio": 2})


def test_next_decision_walks_the_space_sequentially() -> None:
    space = space_of("one_of {\n linear(choice(8, 16))\n mlp(ratio = choice(2, 4))\n}\n"
                     "repeat n in int(1..2) { dropout(choice(0.1, 0.2)) }")
    partial: dict = {}
    order = []
    while (site := space.next_decision(partial)) is not None:
        order.append(site.path)
        partial[site.path] = site.options[-1]
    assert order == ["one_of", "mlp.ratio", "n", "n[0].dropout.p", "n[1].dropout.p"]
    assert space.validate(partial) == partial


def test_neighbours_change_one_decision_and_resample_below_it() -> None:
    space = space_of("one_of {\n linear(choice(8, 16))\n mlp(ratio = choice(2, 4))\n}\n"
                     "dropout(choice(0.1, 0.2))")
    point = space.validate({"one_of": "linear", "linear.out": 8, "dropout.p": 0.1})
    near = space.neighbours(point, seed=0)
    assert {"one_of": "linear", "linear.out": 16, "dropout.p": 0.1} in near
    assert {"one_of": "linear", "linear.out": 8, "dropout.p": 0.2} in near
    switched = [p for p in near if p["one_of"] == "mlp"]
    assert len(switched) == 1 and "linear.out" not in switched[0]
    assert switched[0]["dropout.p"] == 0.1  # the rest is kept
    for p in near:
        space.validate(p)
    assert space.mutate(point, seed=1) in near


def test_train_decisions_are_points_but_not_architectures() -> None:
    space = archc.loads("space s {\n input x: float[4]\n linear(choice(8, 16))\n}\n"
                        "train {\n lr = float(1e-4..1e-2, log)\n batch = choice(32, 64)\n}\n")
    assert space.size == 4 and space.architecture().size == 2
    assert space.continuous == ("train.lr",)
    point = space.sample(seed=0)
    assert 1e-4 <= point["train.lr"] <= 1e-2 and point["train.batch"] in (32, 64)


def test_one_of_value_form_stands_as_a_statement() -> None:
    space = space_of("one_of(a = relu, b = gelu)")
    assert paths(space) == ["one_of"] and space.size == 2
