"""The wheel ``pip install .`` builds carries everything the app needs at run time.

The wheel is built once (``pip wheel . --no-deps``) from a copy of the working tree, so the
build neither litters the checkout with ``build/`` and ``*.egg-info`` nor picks up stale files
from an earlier build.  Its build back-end (setuptools) comes from the package registry.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_ROOTS = ("tui", "widgets")
#: Never copied into the build tree: VCS, caches, virtualenvs and earlier build output.
_SKIP_ANYWHERE = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".venv"}
_SKIP_AT_TOP = {"build", "dist", ".ci", "venv"}


def _is_editor_litter(name: str) -> bool:
    return name.startswith(".") or name.endswith(("~", ".swp", ".swo", ".pyc", ".orig", ".rej"))


def _source_files(top: str) -> list[Path]:
    """Files under ``ROOT/top`` that belong in the wheel (relative to ROOT)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(ROOT / top):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_ANYWHERE)
        for name in filenames:
            if not _is_editor_litter(name):
                found.append((Path(dirpath) / name).relative_to(ROOT))
    return sorted(found)


def _ignore(directory: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in _SKIP_ANYWHERE or n.endswith(".egg-info")}
    if Path(directory).resolve() == ROOT:
        skip |= {n for n in names if n in _SKIP_AT_TOP}
    return skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    tmp = tmp_path_factory.mktemp("wheel")
    src, out = tmp / "src", tmp / "out"
    shutil.copytree(ROOT, src, ignore=_ignore, symlinks=True)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(out)],
        cwd=src, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = list(out.glob("minertop-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as zf:
        yield zf


@pytest.fixture(scope="module")
def names(wheel: zipfile.ZipFile) -> set[str]:
    return set(wheel.namelist())


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_wheel_has_the_stylesheet(names: set[str]) -> None:
    assert "tui/minertop.tcss" in names
    css = {str(p) for top in PACKAGE_ROOTS for p in _source_files(top) if p.suffix == ".tcss"}
    assert css <= names, f"stylesheets missing from the wheel: {sorted(css - names)}"


def test_wheel_has_every_data_file(names: set[str]) -> None:
    data = {p.as_posix() for p in _source_files("tui/data")}
    assert "tui/data/__init__.py" in data
    assert data <= names, f"tui/data files missing from the wheel: {sorted(data - names)}"


def test_wheel_has_every_module(names: set[str]) -> None:
    modules = {p.as_posix() for top in PACKAGE_ROOTS for p in _source_files(top)
               if p.suffix == ".py"}
    assert modules <= names, f"modules missing from the wheel: {sorted(modules - names)}"
    for pkg in ("tui", "tui.sources", "tui.sim", "widgets"):
        assert f"{pkg.replace('.', '/')}/__init__.py" in names, pkg


def test_wheel_has_no_tests_or_caches(names: set[str]) -> None:
    tops = {n.split("/", 1)[0] for n in names if ".dist-info/" not in n}
    assert tops == set(PACKAGE_ROOTS), sorted(tops)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_console_script(wheel: zipfile.ZipFile, names: set[str]) -> None:
    ep_file = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    eps = configparser.ConfigParser()
    eps.read_string(wheel.read(ep_file).decode())
    assert eps["console_scripts"]["minertop"].strip() == "tui.cli:main"


def test_pyproject_lists_every_package() -> None:
    """A new subpackage under tui/ or widgets/ must not be silently left out of the wheel."""
    listed = _pyproject()["tool"]["setuptools"]["packages"]
    assert isinstance(listed, list), "expected an explicit package list"
    on_disk = {p.parent.as_posix().replace("/", ".")
               for top in PACKAGE_ROOTS for p in _source_files(top) if p.suffix == ".py"}
    missing = sorted(on_disk - set(listed))
    assert not missing, f"not in [tool.setuptools] packages: {missing}"
    stale = {pkg for pkg in listed if not (ROOT / pkg.replace(".", "/") / "__init__.py").is_file()}
    assert not stale, f"listed but not a package on disk: {sorted(stale)}"


def test_wheel_imports_on_its_own(wheel: zipfile.ZipFile, tmp_path: Path) -> None:
    """Every module imports from the unpacked wheel alone, and the resources load."""
    wheel.extractall(tmp_path)
    modules = sorted(
        n[:-3].replace("/", ".").removesuffix(".__init__")
        for n in wheel.namelist() if n.endswith(".py")
    )
    script = (
        "import importlib, sys\n"
        "from importlib import resources\n"
        f"root = {str(tmp_path)!r}\n"
        f"for name in {modules!r}:\n"
        "    mod = importlib.import_module(name)\n"
        "    assert mod.__file__.startswith(root), (name, mod.__file__)\n"
        "assert resources.files('tui').joinpath('minertop.tcss').read_text().strip()\n"
        "from tui.app import MinertopApp\n"
        "assert MinertopApp.CSS_PATH == 'minertop.tcss'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_wheel_metadata_license_version_and_classifiers(
        wheel: zipfile.ZipFile, names: set[str]) -> None:
    """The version is defined once (tui/__init__.py), the licence is an SPDX expression with
    its file shipped, and the classifiers name every supported Python."""
    import email.parser

    import tui

    meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = email.parser.Parser().parsestr(wheel.read(meta_name).decode())
    assert meta["Version"] == tui.__version__
    assert "version" not in _pyproject()["project"]  # dynamic: no second copy to drift
    assert meta["License-Expression"] == "MIT"
    assert any(n.endswith("licenses/LICENSE") for n in names), sorted(names)[:5]
    classifiers = set(meta.get_all("Classifier") or [])
    for minor in (10, 11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert "Environment :: Console" in classifiers
    assert meta["Requires-Python"] == ">=3.10"
