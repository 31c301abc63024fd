"""The layout is a contract: the paper's stages import only earlier stages, lrlib's additions sit
on top of them, and the method never depends on the toy world.

    stage 1 lrlib.anchors -> 2 lrlib.regions -> 3 lrlib.editors -> 4 lrlib.losses
            -> 5 lrlib.train -> 6 lrlib.scoring
    lrlib.additions.*   may use any stage; no stage uses an addition
    lrlib.pipeline      composes both; nothing in the method imports the pipeline
    lrlib.toy, lrlib.bench, lrlib.widgets, lrlib.course: applications of the library

Every import counts, also the ones inside functions (a lazy import is still a dependency).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

LRLIB = Path(__file__).resolve().parents[1] / "lrlib"
STAGES = ["lrlib.anchors", "lrlib.regions", "lrlib.editors", "lrlib.losses", "lrlib.train",
          "lrlib.scoring"]
APPS = ("lrlib.toy", "lrlib.bench", "lrlib.widgets", "lrlib.course", "lrlib.cli", "lrlib.__main__",
        "lrlib.demo")


def _module(path: Path) -> str:
    rel = path.relative_to(LRLIB.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every lrlib module `path` imports, anywhere in the file (`from lrlib import x` counts as
    lrlib.x when x is a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "lrlib":
            out.add(node.module)
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if (LRLIB.parent / sub.replace(".", "/")).with_suffix(".py").exists() or \
                        (LRLIB.parent / sub.replace(".", "/")).is_dir():
                    out.add(sub)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "lrlib"}
    return out


GRAPH = {_module(p): _imports(p) for p in LRLIB.rglob("*.py")}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _stage(module: str) -> int | None:
    return next((i for i, s in enumerate(STAGES) if _under(module, s)), None)


def test_the_graph_sees_the_modules_it_checks():
    """Guards the test itself: a layout change that empties the graph would pass everything."""
    for s in STAGES + ["lrlib.pipeline", "lrlib.additions.grounding", "lrlib.additions.fitted"]:
        assert any(_under(m, s) for m in GRAPH), s
    assert "lrlib.regions" in GRAPH["lrlib.train"]
    assert "lrlib.additions.fitted" in GRAPH["lrlib.additions.grounding"]


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _stage(m) is not None))
def test_a_stage_imports_only_earlier_stages(module):
    """Bug caught: the paper's stage 1 reaching into stage 2 or 3 (anchors -> regions/editors),
    a stage that needs lrlib's additions or the pipeline to run."""
    i = _stage(module)
    later = [d for d in GRAPH[module] if (_stage(d) or -1) > i]
    upward = [d for d in GRAPH[module]
              if _under(d, "lrlib.additions") or _under(d, "lrlib.pipeline")
              or any(_under(d, a) for a in APPS)]
    assert not later and not upward, (module, later, upward)


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if not any(_under(m, a) for a in APPS)))
def test_the_library_never_imports_the_toy_world_or_the_applications(module):
    """Bug caught: the method (models, worlds, pipeline) importing lrlib.toy for a constant, so a
    photo edit loads the toy world's code, or a library module reaching into the bench."""
    bad = [d for d in GRAPH[module] if any(_under(d, a) for a in APPS)]
    assert not bad, (module, bad)


def test_nothing_but_the_pipeline_and_applications_compose_additions_with_the_pipeline():
    """The additions are composed in one place: only lrlib.pipeline (and the applications, the
    results and the widgets) import lrlib.pipeline; an addition never imports the pipeline."""
    users = sorted(m for m, deps in GRAPH.items() if any(_under(d, "lrlib.pipeline") for d in deps))
    allowed = {"lrlib"} | {m for m in GRAPH if any(_under(m, a) for a in APPS)}
    assert set(users) <= allowed, set(users) - allowed


def test_the_package_root_holds_no_test_helpers():
    """The random-weight world and its tokenizers live in lrlib.worlds, not beside the stages."""
    root = {p.stem for p in LRLIB.glob("*.py")}
    assert not root & {"tiny", "tokenizers", "world", "io"}, root & {"tiny", "tokenizers", "world", "io"}
