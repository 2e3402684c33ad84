"""The documentation's links: every relative link in README.md and docs/*.md names a file that
exists, and every #anchor a heading of its target, by GitHub's rules for heading ids."""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import markdown
import pytest

ROOT = Path(__file__).resolve().parent.parent
README_LINES = 250  # issue 25: the README is the quick start; the rest is in docs/


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


class _Collector(HTMLParser):
    """The link targets and the heading texts of one rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.headings: list[str] = []
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("href"):
            self.targets.append(str(found["href"]))
        elif tag == "img" and found.get("src"):
            self.targets.append(str(found["src"]))
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        if re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)


def parse(path: Path) -> _Collector:
    collector = _Collector()
    collector.feed(markdown.markdown(path.read_text(encoding="utf-8"), extensions=["tables", "fenced_code"]))
    return collector


def github_slug(heading: str) -> str:
    """GitHub's heading id: lower case, punctuation dropped (letters, digits, `_`, `-` and spaces
    stay), each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The ids GitHub gives the headings of a page: repeats get -1, -2, ..."""
    seen: Counter[str] = Counter()
    ids = set()
    for heading in parse(path).headings:
        slug = github_slug(heading)
        ids.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return ids


def broken_links(path: Path) -> list[str]:
    """Each relative link of one page whose file or heading does not exist, with the reason."""
    broken = []
    for target in parse(path).targets:
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue  # an address on the web: not ours to check offline
        linked = (path.parent / unquote(parts.path)).resolve() if parts.path else path
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}")
        elif parts.fragment:
            if linked.suffix != ".md":
                broken.append(f"{target}: an anchor into a file that is not Markdown")
            elif unquote(parts.fragment) not in anchors(linked):
                broken.append(f"{target}: no heading #{parts.fragment} in {linked.name}")
    return broken


@pytest.mark.parametrize("page", pages(), ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_docs_are_linked_from_the_readme() -> None:
    readme = {urlsplit(target).path for target in parse(ROOT / "README.md").targets}
    unlinked = [p.name for p in pages()[1:] if f"docs/{p.name}" not in readme]
    assert unlinked == [], "docs pages the README does not link"


def test_readme_is_short_and_keeps_the_quick_start() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_LINES
    for command in ("./scripts/run.sh", "./scripts/test.sh"):  # .ci/run runs the latter
        assert re.search(rf"^{re.escape(command)}\b", text, re.MULTILINE), command


def test_checker_finds_a_broken_file_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# Run inside Orthanc\n\n## Stored transfer syntax\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# A\n\n## A\n\n"
        "[ok](docs/b.md#run-inside-orthanc) [ok](docs/b.md#stored-transfer-syntax) [ok](#a-1)"
        " [web](https://example.org/x) `[not a link](nothing.md)`\n\n"
        "[gone](docs/c.md) [no heading](docs/b.md#deployment) [no heading here](#b)\n\n"
        "```\n[in code](nothing.md)\n```\n"
    )
    assert broken_links(page) == [
        f"docs/c.md: no file {tmp_path / 'docs' / 'c.md'}",
        "docs/b.md#deployment: no heading #deployment in b.md",
        "#b: no heading #b in README.md",
    ]


def test_slugs_follow_github() -> None:
    assert github_slug("Deployment: several receivers and worker hosts") == (
        "deployment-several-receivers-and-worker-hosts"
    )
    assert github_slug("Deep image-in-image steganography (seed 000)") == "deep-image-in-image-steganography-seed-000"
    assert github_slug("Send, query, fetch (a walkthrough)") == "send-query-fetch-a-walkthrough"
    assert github_slug("What `node_id` is") == "what-node_id-is"
