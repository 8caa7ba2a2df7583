"""A griffe extension for the API reference, loaded by mkdocs.yml.

Two things a `.pyi` stub of a native module does that griffe (2.x) does not render:

- A function declared only through `@overload` (stubs have no implementation, and
  mypy rejects one) is dropped from the docs altogether (griffe issue #417), so
  `Moka.get` and `Moka.remove` would be missing. This adds each such function
  back, with its overloads and the first docstring found among them. (A stub
  beside a `.py` module needs no help: its overloads go to the implementation.)
- A native class is built by `__new__`; `merge_init_into_class` only looks at
  `__init__`, so `Moka(capacity, ...)` would show no parameters. This exposes the
  `__new__` signature as the class signature.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import griffe


class StubOverloads(griffe.Extension):
    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        _restore_overloaded(cls)
        new = cls.members.get("__new__")
        if isinstance(new, griffe.Function) and "__init__" not in cls.members:
            init = copy.copy(new)
            init.name = "__init__"
            init.parameters = griffe.Parameters(*[p for p in new.parameters if p.name != "cls"])
            init.parameters = griffe.Parameters(
                griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword),
                *init.parameters,
            )
            init.returns = None
            cls.set_member("__init__", init)

    def on_module_members(self, *, mod: griffe.Module, **kwargs: Any) -> None:
        _restore_overloaded(mod)


def _restore_overloaded(obj: griffe.Class | griffe.Module) -> None:
    filepath = obj.filepath
    if isinstance(filepath, Path) and filepath.with_suffix(".py").exists():
        # A stub beside Python source: griffe hands the overloads to the implementation
        # when it merges the two.
        return
    restored = False
    for name, overloads in list(obj.overloads.items()):
        if not overloads or name in obj.members:
            continue
        # The last overload stands for the function; the others are listed above it.
        main = copy.copy(overloads[-1])
        main.overloads = list(overloads[:-1])
        docstring = next((o.docstring for o in overloads if o.docstring), None)
        main.docstring = None
        if docstring is not None:
            main.docstring = griffe.Docstring(docstring.value, lineno=docstring.lineno, parent=main)
        main.lineno = overloads[0].lineno
        obj.set_member(name, main)
        restored = True
    if restored:
        # Keep `members_order: source` true to the stub: put them back where they were declared.
        members = sorted(obj.members.items(), key=lambda item: _declared_at(item[1]))
        obj.members.clear()
        obj.members.update(members)


def _declared_at(member: griffe.Object | griffe.Alias) -> int:
    # An import's own line: resolving it to its target would load other packages.
    lineno = member.alias_lineno if isinstance(member, griffe.Alias) else member.lineno
    return lineno or 0
