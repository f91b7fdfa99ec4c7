"""The shared lists are spelled once, in stylebench/vocabulary.py, and the code agrees with them."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest
from PIL import Image

from stylebench import vocabulary
from stylebench.vocabulary import (
    CC0_ENGINES,
    ENGINE_NAMES,
    IMAGE_SUFFIXES,
    IMPORT_MIN_SIDE,
    LICENCE_ENGINES,
    LOCAL_ENGINES,
    ROLES,
    SCRAPE_MIN_SIDE,
    STATUSES,
    WORKING_ENGINES,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("storage", "scraper", "styletransfer", "flows", "stylebench")
SOURCE = ROOT / "stylebench" / "vocabulary.py"

# Lists whose members are distinctive: this many of them together in a literal collection is
# a copy of the list; for engines and licences in one string too (help and messages listing
# them). Suffixes in prose are examples ("end the name with .png, .jpg, ...").
DISTINCTIVE = {
    "ENGINE_NAMES": 2,
    "IMAGE_SUFFIXES": 2,
    "LICENSES": 3,  # cc0 and pdm together mean "public domain" (scraper/engines/museum.py)
}
IN_TEXT = ("ENGINE_NAMES", "LICENSES")
# Lists of common words ("content" and "style" also name losses): a copy is a module constant
# of that name, a Literal, an Enum or an ``in`` test holding the whole list.
COMMON = ("ROLES", "STATUSES", "RUN_STATUSES", "LOCAL_ENGINES")


@functools.cache
def _modules() -> tuple[tuple[str, ast.Module], ...]:
    """Every module of the packages but the vocabulary, parsed (once per session)."""
    return tuple(
        (path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path)))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != SOURCE
    )


def _strings(node: ast.AST) -> set[str]:
    """The string constants a literal collection holds (a dict: its keys)."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        items = node.elts
    elif isinstance(node, ast.Dict):
        items = [k for k in node.keys if k is not None]
    else:
        return set()
    return {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}


def _docstrings(tree: ast.Module) -> set[int]:
    kinds = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def _words(text: str, members: tuple[str, ...]) -> set[str]:
    return {m for m in members if re.search(rf"(?<![\w.-]){re.escape(m)}(?![\w-])", text)}


def _distinctive_copies(tree: ast.Module, name: str, least: int) -> list[int]:
    """Lines of ``tree`` where ``least`` members of list ``name`` stand together."""
    members = getattr(vocabulary, name)
    docstrings = _docstrings(tree)
    lines = []
    for node in ast.walk(tree):
        held = (_strings(node) | _enum_values(node)) & set(members)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and name in IN_TEXT:
            if id(node) not in docstrings:
                held = _words(node.value, members)
        if len(held) >= least:
            lines.append(node.lineno)
    return sorted(lines)


def _whole(node: ast.AST, members: tuple[str, ...]) -> bool:
    return _strings(node) >= set(members)


def _named(target: str, name: str) -> bool:
    """Whether a constant's name says it holds list ``name`` (``_ROLES``, ``STATUSES`` for
    RUN_STATUSES)."""
    return any(word in target.upper() for word in name.split("_") if len(word) > 3)


def _enum_values(node: ast.AST) -> set[str]:
    """The string values of an Enum class's members (empty for anything else)."""
    if not isinstance(node, ast.ClassDef) or not any(
        getattr(b, "id", getattr(b, "attr", "")) == "Enum" for b in node.bases
    ):
        return set()
    return {
        s.value.value
        for s in node.body
        if isinstance(s, ast.Assign)
        and isinstance(s.value, ast.Constant)
        and isinstance(s.value.value, str)
    }


def _common_copies(tree: ast.Module, name: str) -> list[int]:
    """Lines of ``tree`` where list ``name`` is a constant of its name, a Literal, an Enum or
    the right side of ``in``."""
    members = getattr(vocabulary, name)
    lines = []
    for node in ast.walk(tree):
        copy = False
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            named = any(isinstance(t, ast.Name) and _named(t.id, name) for t in targets)
            copy = named and _whole(node.value, members)
        elif isinstance(node, ast.Subscript) and getattr(node.value, "id", "") == "Literal":
            copy = _whole(node.slice, members)
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
            copy = _strings(node.comparators[0]) == set(members)
        elif isinstance(node, ast.ClassDef):
            copy = _enum_values(node) >= set(members)
        if copy:
            lines.append(node.lineno)
    return sorted(lines)


@pytest.mark.parametrize("name", sorted(DISTINCTIVE))
def test_no_module_spells_a_distinctive_list_again(name):
    found = [
        f"{path}:{line}"
        for path, tree in _modules()
        for line in _distinctive_copies(tree, name, DISTINCTIVE[name])
    ]
    assert found == []


@pytest.mark.parametrize("name", COMMON)
def test_no_module_spells_a_list_of_common_words_again(name):
    found = [f"{path}:{line}" for path, tree in _modules() for line in _common_copies(tree, name)]
    assert found == []


def test_the_scans_see_copies():
    copies = ast.parse(
        "ROLES = ('content', 'style')\n"  # line 1
        "LOSSES = ('content', 'style')\n"  # line 2: loss names, not a copy
        "role: Literal['content', 'style']\n"  # line 3
        "ok = role not in ('content', 'style')\n"  # line 4
        "class Role(str, Enum):\n    content = 'content'\n    style = 'style'\n"  # line 5
        "text = 'engines: bing, met'\n"  # line 8
        "also = 'not metal, nor a .bing file'\n"  # line 9: no engine named
        "SUFFIXES = {'.png', '.jpg'}\n"  # line 10
        "STATUSES = ('ok', 'failed', 'diverged')\n"  # line 11
        "class Engine(str, Enum):\n    bing = 'bing'\n    met = 'met'\n"  # line 12
    )
    assert _common_copies(copies, "ROLES") == [1, 3, 4, 5]
    assert _common_copies(copies, "RUN_STATUSES") == [11]
    assert _distinctive_copies(copies, "ENGINE_NAMES", 2) == [8, 12]
    assert _distinctive_copies(copies, "IMAGE_SUFFIXES", 2) == [10]


def test_every_engine_is_the_module_of_its_name():
    from scraper.engines import ENGINES, canary

    assert tuple(ENGINES) == ENGINE_NAMES
    for name, module in ENGINES.items():
        assert module.__name__ == f"scraper.engines.{name}"
        assert module.NAME == name and module.INFO.name == name
    assert set(canary.INFO) == set(ENGINE_NAMES)
    for subset in (LICENCE_ENGINES, CC0_ENGINES, WORKING_ENGINES):
        assert set(subset) <= set(ENGINE_NAMES)
    assert not set(LOCAL_ENGINES) & set(ENGINE_NAMES)
    assert [n for n in ENGINE_NAMES if canary.INFO[n].licences] == [
        n for n in ENGINE_NAMES if n in LICENCE_ENGINES + CC0_ENGINES
    ]


def test_image_suffixes_are_the_formats_the_validator_decodes():
    from scraper.validate import FORMATS

    extensions = Image.registered_extensions()
    assert {extensions[suffix] for suffix in IMAGE_SUFFIXES} == set(FORMATS)


def test_the_command_line_offers_the_vocabulary():
    from stylebench.cli import catalog

    assert [e.value for e in catalog.Role] == list(ROLES)
    assert [e.value for e in catalog.Status] == list(STATUSES)
    assert [e.value for e in catalog.Engine] == list(ENGINE_NAMES)


def _min_side_numbers(tree: ast.Module) -> list[int]:
    """Lines where a minimum side is a number: a default of a ``min_side`` parameter or field
    (also as ``typer.Option(DEFAULT, ...)``) or a ``min_side=`` argument, equal to a bound."""
    bounds = {SCRAPE_MIN_SIDE, IMPORT_MIN_SIDE}

    def literal(node: ast.AST | None) -> bool:
        if isinstance(node, ast.Call) and node.args:  # typer.Option(DEFAULT, ...)
            node = node.args[0]
        return isinstance(node, ast.Constant) and node.value in bounds

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arguments):
            args = node.posonlyargs + node.args
            pairs = list(zip(args[len(args) - len(node.defaults) :], node.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True) if d]
            lines += [a.lineno for a, d in pairs if "min_side" in a.arg and literal(d)]
        elif isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "min_side":
            lines += [node.lineno] if literal(node.value) else []
        elif isinstance(node, ast.keyword) and node.arg == "min_side" and literal(node.value):
            lines.append(node.value.lineno)
    return sorted(lines)


def test_no_minimum_side_is_written_as_a_number():
    """--min-side defaults, CurationConfig and scrape() take SCRAPE_MIN_SIDE / IMPORT_MIN_SIDE."""
    found = [f"{path}:{line}" for path, tree in _modules() for line in _min_side_numbers(tree)]
    assert found == []
    numbers = ast.parse(
        "def scrape(min_side: int = 256): ...\n"  # line 1
        "def cli(min_side: int = typer.Option(64, '--min-side')): ...\n"  # line 2
        "class C:\n    min_side: int = 256\n"  # line 4
        "CurationConfig(min_side=64)\n"  # line 5
        "CurationConfig(min_side=1)\n"  # line 6: no size rule, not a bound
    )
    assert _min_side_numbers(numbers) == [1, 2, 4, 5]


def test_one_image_id_lookup():
    """An image id or its prefix is looked up by storage.Catalog.image (and resolve) only."""
    places = [
        f"{path}:{node.lineno}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and "starts_with(image_id" in node.value
    ]
    assert len(places) == 1 and places[0].startswith("storage/catalog.py:")
