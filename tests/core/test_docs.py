"""The addon author's documentation stays true to the code (Datasette's test_plugin_hooks_are_documented)."""

import inspect
import re
from pathlib import Path

import pluggy

from core import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing-an-addon.md"


def spec_functions():
    marker = "mosaic_spec"
    return {
        name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, marker)
    }


def test_every_hookspec_has_a_docstring_and_is_documented_with_its_signature():
    specs = spec_functions()
    assert len(specs) >= 9
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `(\w+)\((.*?)\)`$", text, flags=re.M))
    for name, fn in specs.items():
        assert fn.__doc__ and len(fn.__doc__.strip()) > 40, f"{name} needs a docstring"
        signature = ", ".join(inspect.signature(fn).parameters)
        assert (name, signature) in documented, f"document `{name}({signature})` in {DOC.name}"
    assert {n for n, _ in documented} <= set(specs), "the page documents a hook that does not exist"


def test_hookimpl_marker_is_the_one_pluggy_project():
    assert isinstance(hookspecs.hookimpl, pluggy.HookimplMarker)
    assert hookspecs.hookimpl.project_name == "mosaic"
