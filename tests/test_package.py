"""The installed distribution: importable, one version everywhere, native module in place."""

from __future__ import annotations

import re
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

import moka_py

CARGO_TOML = Path(__file__).resolve().parents[1] / "Cargo.toml"


def test_version_is_the_distribution_version() -> None:
    assert moka_py.__version__ == moka_py.VERSION == metadata.version("moka-py")


@pytest.mark.skipif(not CARGO_TOML.exists(), reason="tests run outside a source tree")
def test_version_comes_from_cargo_toml() -> None:
    package = CARGO_TOML.read_text(encoding="utf-8").split("[package]", 1)[1].split("\n[", 1)[0]
    match = re.search(r'^version\s*=\s*"([^"]+)"', package, re.MULTILINE)
    assert match is not None
    assert moka_py.__version__ == match.group(1)


def test_native_module_is_inside_the_package() -> None:
    from moka_py import _moka_py

    assert Path(_moka_py.__file__).parent == Path(moka_py.__file__).parent


@pytest.mark.skipif(
    not sysconfig.get_config_var("Py_GIL_DISABLED"), reason="needs a free-threaded build"
)
def test_import_keeps_the_gil_disabled() -> None:
    # An extension that does not declare itself free-threading safe re-enables the GIL on import.
    assert not sys._is_gil_enabled()  # type: ignore[attr-defined,unused-ignore]
