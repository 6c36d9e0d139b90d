"""A Griffe extension for the API reference: the docstrings' reST idioms, read as Markdown.

The library's docstrings are written for readers of the source and for ``help()``: reST roles
(``:func:`train```, ``:class:`~lightning_args.load_run```) and ``::`` literal blocks. Markdown has
neither, so before mkdocstrings renders a docstring this extension rewrites, in the rendered copy
only (the source is untouched):

- a role naming a public name of ``lightning_args.__all__`` (``X`` or ``lightning_args.X``) into a
  link to its reference entry; any other role into inline code (``~`` keeps the last component);
- a paragraph ending in ``::`` and the indented block after it into the paragraph ending in ``:``
  and a fenced code block (under a lone ``Example::`` the block stays indented, so that the
  Google-style parser reads it as the section's body);
- a lone ``Example:`` title into ``Examples:``, the title Griffe's Google-style parser knows;
- the reST escape ``\\ `` (a backslash and a space, used to glue a suffix to a literal) away.

mkdocs.yml loads it by path (``docs/griffe_rst.py:RestRoles``); it is not part of the package.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import griffe

_PKG = "lightning_args"
_INIT = Path(__file__).resolve().parent.parent / "lightning_args" / "__init__.py"
_ROLE = re.compile(r":(?:py:)?(func|class|meth|mod|attr|exc|data|obj|const):`(~?)([^`]+)`")
_LINKED_ROLES = {"func", "class", "exc", "obj"}
_LITERAL = re.compile(r"^(?P<indent>\s*)(?P<head>.*?)\s*::\s*$")
_SECTION_TITLES = {"Example", "Examples"}
# Griffe's Google-style parser knows "Examples:" only; a lone "Example:" would be an admonition,
# its doctest rendered as prose.
_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


def public_names(init: Path = _INIT) -> dict[str, str]:
    """Each name of ``__all__`` in ``lightning_args/__init__.py`` (read, not imported) and the
    identifier of its reference entry.

    That is ``lightning_args.X``, except where a submodule has the same name as the function
    re-exported from it (``lightning_args.resume``): there Griffe reads ``lightning_args.resume``
    as the module, and the reference documents the defining module's object,
    ``lightning_args.resume.resume``.
    """
    tree = ast.parse(init.read_text())
    names: list[str] = []
    origin: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            names = list(ast.literal_eval(node.value))
        elif isinstance(node, ast.ImportFrom) and node.module:
            origin.update((alias.asname or alias.name, node.module) for alias in node.names)
    package = init.parent
    shadowed = {
        name
        for name in names
        if (package / f"{name}.py").exists() or (package / name / "__init__.py").exists()
    }
    return {
        name: f"{origin[name]}.{name}" if name in shadowed and name in origin else f"{_PKG}.{name}"
        for name in names
    }


def roles(text: str, public: dict[str, str]) -> str:
    """Rewrite reST roles as Markdown links (public names) or inline code (the rest)."""

    def one(match: re.Match[str]) -> str:
        role, tilde, target = match.groups()
        shown = target.rsplit(".", 1)[-1] if tilde else target
        name = target.removeprefix("lightning_args.")
        if role in _LINKED_ROLES and name in public:
            return f"[`{shown}`][{public[name]}]"
        return f"`{shown}`"

    return _ROLE.sub(one, text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def literal_blocks(text: str) -> str:
    """Rewrite reST ``::`` literal blocks as fenced code blocks."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _LITERAL.match(lines[i])
        start = i + 1
        while start < len(lines) and not lines[start].strip():
            start += 1
        if not match or start == len(lines) or _indent(lines[start]) <= len(match["indent"]):
            out.append(lines[i])
            i += 1
            continue
        indent, head = match["indent"], match["head"]
        end = start
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > len(indent)):
            end += 1
        while not lines[end - 1].strip():
            end -= 1
        cut = _indent(lines[start])
        body = [line[cut:] if line.strip() else "" for line in lines[start:end]]
        if head in _SECTION_TITLES:
            # A Google-style section: its body is indented under the title, with no blank line.
            inner = indent + "    "
            out.append(f"{indent}{head}:")
        else:
            inner = indent
            if head:
                out += [f"{indent}{head}:", ""]
        out += [f"{inner}```", *[f"{inner}{line}" if line else "" for line in body], f"{inner}```"]
        i = end
    return "\n".join(out)


def to_markdown(text: str, public: dict[str, str]) -> str:
    """The docstring ``text`` as Markdown (roles, literal blocks, reST escapes)."""
    text = literal_blocks(roles(text, public)).replace("\\ ", "")
    return _EXAMPLE.sub(r"\1Examples:", text)


class RestRoles(griffe.Extension):
    """Rewrites every docstring of the loaded package when Griffe creates its object."""

    def __init__(self) -> None:
        super().__init__()
        self.public = public_names()

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring before mkdocstrings parses it."""
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value, self.public)
