"""The documentation is true: pages exist, links resolve, commands match CI, examples run."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
#: Pages written with (and for) this test: their Python blocks run, their paths stay portable.
OWN_PAGES = [README, *sorted(DOCS.glob("*.md"))]
#: Pages whose Python blocks are executed (in this order of the blocks within each page).
EXECUTED_PAGES = [
    "conventions.md",
    "models.md",
    "analysis.md",
    "learning.md",
    "bridge.md",
    "recordings.md",
    "sweeps.md",
]


# ---------------------------------------------------------------------------------------------
# markdown helpers


def code_blocks(text: str, lang: str | None = None) -> list[str]:
    """Fenced code blocks of ``text`` (optionally only those whose info string is ``lang``)."""
    blocks = re.findall(r"^```([^\n`]*)\n(.*?)^```\s*$", text, flags=re.M | re.S)
    return [body for info, body in blocks if lang is None or info.strip() == lang]


def prose(text: str) -> str:
    """``text`` without its fenced code blocks."""
    return re.sub(r"^```.*?^```\s*$", "", text, flags=re.M | re.S)


def section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section (up to the next heading of level <= 2)."""
    m = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^#{{1,2}} |\Z)", text, flags=re.M | re.S)
    assert m, f"no '## {heading}' section"
    return m.group(1)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    s = re.sub(r"[`*_]", "", heading.strip().lower())
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6} (.+)$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    """Relative link targets of a markdown file (no URLs, no pure in-page anchors)."""
    targets = re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", prose(path.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"^[a-z]+://|^mailto:", t)]


def all_links():
    pages = [README, *sorted(DOCS.glob("*.md"))]
    return [(p, t) for p in pages for t in links(p)]


# ---------------------------------------------------------------------------------------------
# structure


def test_index_lists_existing_pages():
    text = section((DOCS / "index.md").read_text(encoding="utf-8"), "Pages")
    listed = re.findall(r"\[[^\]]*\]\(([^)#\s]+)", text)
    assert {"quickstart.md", "scenarios.md", "conventions.md", "models.md"} <= set(listed)
    for target in listed:
        assert (DOCS / target).is_file(), f"docs/index.md lists {target}, which does not exist"
    # and every docs page is listed
    for page in DOCS.glob("*.md"):
        if page.name != "index.md":
            assert page.name in listed, f"docs/index.md does not list {page.name}"


@pytest.mark.parametrize(
    "page, target", all_links(), ids=[f"{p.name}->{t}" for p, t in all_links()]
)
def test_relative_links_resolve(page, target):
    file_part, _, anchor = target.partition("#")
    dest = (page.parent / file_part).resolve() if file_part else page
    if not dest.exists() and dest == ROOT / "benchmarks" / "README.md":
        pytest.skip("benchmarks/README.md is written separately and has not landed yet")
    assert dest.exists(), f"{page.relative_to(ROOT)} links to missing {target}"
    if anchor and dest.suffix == ".md":
        assert anchor in anchors(dest), f"{page.relative_to(ROOT)}: no heading #{anchor} in {dest}"


def test_readme_setup_commands_match_ci():
    text = README.read_text(encoding="utf-8")
    setup = code_blocks(section(text, "Set up"))
    assert len(setup) == 2, "the README's set-up section must hold exactly two commands"
    install_and_run, run_tests = (b.strip() for b in setup)

    ci = [
        line.strip()
        for line in CI_RUN.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    ci_install = next(line for line in ci if "pip install" in line)
    # CI installs exactly as the README says (modulo --quiet) ...
    assert install_and_run.startswith(ci_install.replace(" --quiet", "") + " && ")
    assert "wavesim run scenarios/pinwheel_rotation.toml -o runs/rot.zarr" in install_and_run
    # ... and its last command is the README's test command.
    assert run_tests == ci[-1] == "python -m pytest"


def test_no_machine_specific_paths():
    pattern = re.compile(r"(?<![\w.])(/work/|/home/|/root/|/tmp/|/Users/|[A-Z]:\\)")
    for page in OWN_PAGES:
        text = page.read_text(encoding="utf-8")
        m = pattern.search(text)
        assert not m, f"{page.relative_to(ROOT)} holds a machine-specific path near {m.group(0)!r}"


def _cli_lines():
    pages = [README, *sorted(DOCS.glob("*.md"))]
    out = []
    for page in pages:
        for block in code_blocks(page.read_text(encoding="utf-8"), "sh"):
            for line in block.splitlines():
                for part in line.split("&&"):
                    part = part.split("#")[0].strip()
                    if part.startswith("wavesim "):
                        out.append((page.name, part))
    return out


@pytest.mark.parametrize("page, line", _cli_lines(), ids=[ln for _, ln in _cli_lines()])
def test_documented_cli_commands_parse(page, line):
    from wavesim.cli import make_parser

    try:
        make_parser().parse_args(shlex.split(line)[1:])
    except SystemExit as exc:  # argparse exits on a bad command line
        pytest.fail(f"{page}: `{line}` is not a valid wavesim command ({exc})")


# ---------------------------------------------------------------------------------------------
# executable examples


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A directory like a fresh checkout: scenarios/ present; matplotlib without a display."""
    import matplotlib

    matplotlib.use("Agg")
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    import matplotlib.pyplot as plt

    plt.close("all")


def run_blocks(blocks: list[str], name: str) -> dict:
    namespace: dict = {"__name__": f"docs_{name}"}
    for i, block in enumerate(blocks):
        code = compile(block, f"<{name} python block {i + 1}>", "exec")
        exec(code, namespace)  # noqa: S102 - executing our own documentation
    return namespace


@pytest.mark.slow
@pytest.mark.parametrize("page", EXECUTED_PAGES)
def test_page_examples_run(page, workdir):
    blocks = code_blocks((DOCS / page).read_text(encoding="utf-8"), "python")
    assert blocks, f"docs/{page} has no python blocks"
    run_blocks(blocks, page)


@pytest.mark.slow
def test_quickstart_and_readme_examples_run(workdir):
    from wavesim.cli import main

    # the README's first command (after installing)
    assert main(["run", "scenarios/pinwheel_rotation.toml", "-o", "runs/rot.zarr", "-q"]) == 0
    readme = code_blocks(README.read_text(encoding="utf-8"), "python")
    run_blocks(readme, "README.md")

    ns = run_blocks(code_blocks((DOCS / "quickstart.md").read_text(encoding="utf-8"), "python"),
                    "quickstart.md")  # fmt: skip
    # what the page says the examples show
    assert ns["ds"]["field"].dims == ("time", "y", "x")
    assert ns["summary"].complete and ns["summary"].steps == 400
    assert ns["sim"].kernel.fused and abs(ns["sim"].time - 20.0) < 1e-9
    assert ns["part"].attrs["complete"] is False and ns["part"].attrs["steps_done"] >= 200
    assert "partial" in str(ns["caught"][0].message)
    assert 2.0 < ns["pw"].attrs["density"] < 4.5
    assert (workdir / "overview.png").is_file() and (workdir / "first_50ms.gif").is_file()
