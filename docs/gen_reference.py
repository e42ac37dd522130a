"""Write the API reference pages at build time (run by the mkdocs-gen-files plugin).

One page per namespace (``api_names.namespaces()``): a package, a module its package imports by name
(``nn.functional``), or an op family. Each object is rendered once, where ``api_names`` says it is
documented; the other namespaces that export it link there. An op family's page adds each op's
forward and backward math, rendered from its ``Function``'s docstring (``ops_math``). Nothing is
listed by hand: a new package or a new name in an ``__all__`` gets its place on the next build.
"""

from __future__ import annotations

import inspect
import logging
import re
import sys
from pathlib import Path

import griffe
import mkdocs_gen_files

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE)]

import api_names  # noqa: E402 - after the path is set
import ops_math  # noqa: E402

log = logging.getLogger("mkdocs.plugins.neural_arch")
LAYER_TITLES = {
    0: "Layer 0: errors", 1: "Layer 1: backend", 2: "Layer 2: autograd", 3: "Layer 3: ops",
    4: "Layer 4: nn, optim, graph", 5: "Layer 5: data, io, export", 6: "Layer 6: models",
    7: "Layer 7: training, distributed, plots", 8: "Layer 8: config, command line, serving",
}


def summary_line(obj: object) -> str:
    doc = inspect.getdoc(obj) if inspect.isclass(obj) or inspect.isroutine(obj) else None
    line = (doc or "").strip().split("\n\n")[0].replace("\n", " ")
    line = re.sub(r"([|*_\[\]<>])", r"\\\1", line)
    return line if len(line) <= 140 else line[:137] + "..."


def kind(obj: object) -> str:
    if inspect.isclass(obj):
        return "class"
    return "function" if callable(obj) else "value"


def op_links(family: str, functions: list[type], names: list[api_names.Name]) -> dict[str, tuple]:
    """For each public function of a family: (its entry, the names of the ``Function`` classes it applies)."""
    links = {}
    for entry in names:
        try:
            source = inspect.getsource(entry.obj)
        except (TypeError, OSError):
            continue
        # a function made by a factory (``sigmoid = _unary(Sigmoid)``) holds its Function in a closure cell
        cells = [c.cell_contents for c in getattr(entry.obj, "__closure__", None) or ()]
        links[entry.name] = (entry, [f.__name__ for f in functions
                                     if re.search(rf"\b{f.__name__}\.apply\b", source) or f in cells])
    return links


def math_section(family: str, functions: list[type], used_by: dict[str, tuple]) -> str:
    if not functions:
        return ""
    out = ["", "## Forward and backward", "",
           "Each op is one `Function`: `forward` computes on arrays and saves what `backward` needs; "
           "`backward` returns one gradient per input. The math below is the `Function`'s docstring, "
           "as the source states it.", ""]
    for fn in functions:
        users = sorted((e for e, classes in used_by.values() if fn.__name__ in classes), key=lambda e: e.name)
        out.append(f"### `{fn.__name__}` {{ #{family}.{fn.__name__} }}")
        out.append("")
        if users:
            out.append("Used by " + ", ".join(link(u.name, u) for u in users) + ".")
            out.append("")
        out.append(ops_math.render(inspect.cleandoc(fn.__doc__ or "")))
    return "\n".join(out)


# griffe reads the source, as mkdocstrings does: what it finds is what ``::: path`` can render
SOURCE = griffe.load(api_names.ROOT, search_paths=[str(HERE.parent / "src")], resolve_aliases=True,
                     resolve_implicit=False, resolve_external=False)
GRIFFE_KIND = {"class": "class", "function": "function", "value": "attribute"}


def griffe_kind(path: str) -> str | None:
    """The kind of object griffe finds at ``path`` (following imports), or None when it finds none."""
    relative = path.removeprefix(api_names.ROOT).removeprefix(".")
    try:
        found = SOURCE[relative] if relative else SOURCE
        return (found.final_target if found.is_alias else found).kind.value
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def rendered_at(entry: api_names.Name) -> str | None:
    """The path mkdocstrings renders ``entry`` under: its own when griffe finds the same kind of object
    there, else where it is defined (``viz.summary`` is also a submodule; a wildcard import of a computed
    ``__all__`` hides ``nn.ZeroPad1d``). None when reading the source cannot find it at all (``acos, atan =
    _unary(...), _unary(...)``, a class a factory makes, ``cfloat, cdouble = ...``): such a name is
    rendered here from the live object instead."""
    want = GRIFFE_KIND[kind(entry.obj)]
    for path in (entry.path, api_names.home(entry.obj)):
        if path and griffe_kind(path) == want:
            return path
    return None


def from_live_object(entry: api_names.Name) -> str:
    obj = entry.obj
    if kind(obj) == "value":
        shown = repr(obj)
        code, doc = f"{entry.name} = {shown if len(shown) <= 100 else shown[:97] + '...'}", ""
    else:
        try:
            code = f"{'class ' if inspect.isclass(obj) else ''}{entry.name}{inspect.signature(obj)}"
        except (TypeError, ValueError):
            code = f"{entry.name}(...)"
        doc = inspect.cleandoc(obj.__doc__ or "")
    return "\n".join([f"## `{entry.name}` {{ #{entry.path} }}", "", "```python", code, "```", "",
                      ops_math.render(doc) if doc else "", ""])


def anchor(entry: api_names.Name) -> str:
    """The identifier the reference renders ``entry`` under."""
    return rendered_at(entry) or entry.path


def link(text: str, entry: api_names.Name) -> str:
    """A Markdown link to where ``entry`` is documented: an autorefs identifier, or for a name
    rendered here from the live object (not known to mkdocstrings) its page and heading."""
    if rendered_at(entry) is None:
        return f"[`{text}`]({entry.namespace}.md#{entry.path})"
    return f"[`{text}`][{anchor(entry)}]"


def page(namespace: str, names: list[api_names.Name], primary: dict) -> tuple[str, list[str]]:
    """The page's Markdown, and the names it documents with a missing docstring."""
    own = [e for e in names if api_names.documented_at(e, primary) is e]
    elsewhere = [e for e in names if api_names.documented_at(e, primary) is not e]
    undocumented = [e.path for e in own if kind(e.obj) != "value" and not (e.obj.__doc__ or "").strip()]
    lines = [f"# `{namespace}`", ""]
    functions = api_names.op_functions(namespace) if api_names.is_op_family(namespace) else []
    used_by = op_links(namespace, functions, own) if functions else {}
    if used_by:
        lines += ["| op | forward and backward |", "|---|---|"]
        for entry in own:
            math = ", ".join(f"[`{c}`](#{namespace}.{c})" for c in used_by.get(entry.name, (None, []))[1])
            lines.append(f"| {link(entry.name, entry)} | {math or 'composed of other ops'} |")
        lines.append("")
    members = ", ".join(f'"{e.name}"' for e in own if rendered_at(e) == e.path)
    lines += [f"::: {namespace}", "    options:", "      show_root_heading: false",
              f"      members: [{members}]", ""]
    for entry in own:
        at = rendered_at(entry)
        if at is None:
            lines.append(from_live_object(entry))
        elif at != entry.path:  # griffe finds it where it is defined: render it from there
            lines += [f"::: {at}", "    options:", "      heading_level: 2", ""]
    if elsewhere:
        lines += ["## Documented elsewhere", "", "| name | kind | documented at | summary |", "|---|---|---|---|"]
        for entry in elsewhere:
            at = api_names.documented_at(entry, primary)
            lines.append(f"| `{entry.name}` | {kind(entry.obj)} | {link(at.path, at)} | {summary_line(entry.obj)} |")
        lines.append("")
    lines.append(math_section(namespace, functions, used_by))
    return "\n".join(lines), undocumented


def main() -> None:
    spaces = api_names.namespaces()
    names = {ns: api_names.public_names(ns) for ns in spaces}
    primary = api_names.primary_locations(names)
    sections: dict[str, list[str]] = {"The package: na.*": [], **{t: [] for t in LAYER_TITLES.values()}, "Other": []}
    undocumented: list[str] = []
    for ns in spaces:
        text, missing = page(ns, names[ns], primary)
        undocumented += missing
        doc_path = Path("reference", f"{ns}.md")
        with mkdocs_gen_files.open(doc_path, "w") as f:
            f.write(text)
        layer = api_names.layer(ns)
        section = "The package: na.*" if ns == api_names.ROOT else LAYER_TITLES.get(layer, "Other")
        sections[section].append(f"    * [{ns}]({ns}.md)\n")
    with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as f:  # literate-nav: sections in layer order
        f.write("* [Overview](index.md)\n")
        for title, entries in sections.items():
            if entries:
                f.write(f"* {title}\n")
                f.writelines(entries)
    with mkdocs_gen_files.open("reference/index.md", "w") as f:
        f.write(index_page(spaces, names))
    for path in undocumented:  # a warning fails `mkdocs build --strict`
        log.warning("public name without a docstring: %s", path)


def index_page(spaces: list[str], names: dict) -> str:
    lines = ["# API reference", "",
             "Generated from the docstrings at build time: one page per namespace, in the order of "
             "DESIGN.md's layers. Each object is documented once; the other namespaces that export it "
             "link there. Op pages show each op's forward and backward math.", "",
             "| namespace | layer | public names | summary |", "|---|---|---|---|"]
    for ns in spaces:
        module = sys.modules[ns]
        layer = api_names.layer(ns)
        first = (inspect.getdoc(module) or "").strip().split("\n\n")[0].replace("\n", " ")
        first = re.sub(r"([|*_\[\]<>])", r"\\\1", first)
        lines.append(f"| [`{ns}`]({ns}.md) | {'' if layer is None else layer} | {len(names[ns])} | {first} |")
    return "\n".join(lines) + "\n"


main()
