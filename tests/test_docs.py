"""The docs hold: the committed JSON Schemas are the models', every relative link in
README.md and docs/ leads to a file (and heading) that exists, and docs/architecture.md
names every module."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot import docs_schemas
from bot.cli import main as escbot
from bot.contracts import json_schemas

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCHEMAS = DOCS / "schemas"
REGENERATE = (
    f"regenerate them with `{docs_schemas.COMMAND}` (from the repository root) and commit "
    "docs/schemas/"
)
PAGES = sorted([ROOT / "README.md", *DOCS.rglob("*.md")])

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`+[^`\n]*`+")
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # [text], one level of brackets inside
    r"\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"  # (target "title")
)
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _prose(text: str) -> str:
    """The page without its code: links shown as code are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces as hyphens, and
    -1, -2 … after a repeated one."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _links(page: Path) -> list[str]:
    prose = _prose(page.read_text(encoding="utf-8"))
    return INLINE_LINK.findall(prose) + REFERENCE.findall(prose)


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_the_committed_schema_is_the_models(name: str) -> None:
    schema = json_schemas()[name]
    path = SCHEMAS / f"{name}.json"
    assert path.is_file(), f"docs/schemas/{name}.json is missing: {REGENERATE}"
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == schema, (
        f"docs/schemas/{name}.json differs from its model (escbot_agent.contracts): {REGENERATE}"
    )
    assert text == docs_schemas.schema_text(schema), (
        f"docs/schemas/{name}.json is not formatted as generated: {REGENERATE}"
    )


def test_docs_schemas_holds_every_contract_and_nothing_else() -> None:
    found = docs_schemas.problems(SCHEMAS)
    assert not found, "docs/schemas/: " + "; ".join(found) + f": {REGENERATE}"
    assert {path.stem for path in SCHEMAS.glob("*.json")} == set(json_schemas()), REGENERATE


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_escbot_schema_prints_the_committed_file(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout in the way
    assert escbot(["schema", name]) == 0
    assert capsys.readouterr().out == (SCHEMAS / f"{name}.json").read_text(encoding="utf-8")


def test_the_protocol_page_links_every_schema() -> None:
    linked = set(_links(DOCS / "protocol.md"))
    missing = [name for name in json_schemas() if f"schemas/{name}.json" not in linked]
    assert not missing, f"docs/protocol.md does not link docs/schemas/ for: {', '.join(missing)}"


def test_the_generator_writes_what_the_check_expects(tmp_path: Path) -> None:
    (tmp_path / "retired.json").write_text("{}\n")
    (tmp_path / "escalation.json").write_text("{}\n")
    assert docs_schemas.main(["--dir", str(tmp_path), "--check"]) == 1
    assert docs_schemas.main(["--dir", str(tmp_path)]) == 0
    assert docs_schemas.main(["--dir", str(tmp_path), "--check"]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        f"{name}.json" for name in json_schemas()
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    broken = []
    for target in _links(page):
        if SCHEME.match(target):
            continue  # https:, mailto:: outside the repository
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
            broken.append(f"{target} (no heading #{anchor} in {destination.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: " + "; ".join(broken)


def test_the_pages_link_to_one_another() -> None:
    """Every page under docs/ is reachable from the index, and the index from README.md."""
    assert "docs/README.md" in _links(ROOT / "README.md")
    index = DOCS / "README.md"
    linked = {(index.parent / target.partition("#")[0]).resolve() for target in _links(index)}
    unlinked = [
        str(page.relative_to(ROOT))
        for page in DOCS.rglob("*.md")
        if page != index and page.resolve() not in linked
    ]
    assert not unlinked, f"docs/README.md does not link: {', '.join(sorted(unlinked))}"


def test_the_architecture_page_names_every_module() -> None:
    """Its folder layout lists every module of bot/, handlers/, blocks/ and migrations/."""
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    modules = [
        path.relative_to(ROOT).as_posix()
        for folder in ("bot", "handlers", "blocks", "migrations")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    ]
    missing = [module for module in modules if f"`{module}`" not in text]
    assert not missing, f"docs/architecture.md does not name: {', '.join(missing)}"
