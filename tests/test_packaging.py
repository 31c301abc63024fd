"""The set-up files agree with each other."""
import re
try:
    import tomllib
except ModuleNotFoundError:          # Python 3.10: the same parser, as a package
    import tomli as tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_pip_section_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    want = set(py["dependencies"]) | set(py["optional-dependencies"]["notebooks"])
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "- pip:")
    got = {l.strip()[2:] for l in lines[start + 1:] if l.strip().startswith("- ")} - {"-e ."}
    assert got == want


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


def test_demo_image_ships_with_the_package():
    from lrlib.demo import DEMO_IMAGE
    assert DEMO_IMAGE.is_file()


def test_every_relative_link_in_the_readmes_resolves():
    """Catches a link left pointing at a moved file (the front page, the guide, the bench README
    and the model cards link to each other and to the code by relative paths)."""
    docs = [ROOT / "README.md", *sorted((ROOT / "lrlib").rglob("README.md"))]
    broken = []
    for doc in docs:
        for m in re.finditer(r"\]\(([^)#\s]+)(#[^)]*)?\)", doc.read_text()):
            target = m.group(1)
            if not re.match(r"[a-z]+:", target) and not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert len(docs) >= 3 and not broken, broken
