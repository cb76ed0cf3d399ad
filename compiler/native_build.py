"""Build and load the native engine's extension modules, with a cache shared by processes.

A module is keyed by sha256(C source + native_runtime.h + Python ABI + compiler flags) and
lives in ``$FABRICLAB_CACHE`` or ``~/.cache/fabriclab/native/`` as ``fl_<key>.so``. Building
takes an exclusive ``fcntl.flock`` on ``fl_<key>.lock``: when twelve switches start at once one
compiles and the others wait, then find the module built. The compiler writes a temporary file
that is renamed into place, so no process ever loads a half-written module.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.machinery
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from fabriclab.compiler.native_codegen import MODULE_NAME_PLACEHOLDER

log = logging.getLogger(__name__)

RUNTIME_HEADER = Path(__file__).resolve().parent / "native_runtime.h"
CFLAGS = ("-O2", "-shared", "-fPIC", "-fno-strict-aliasing", "-w")
_loaded: dict[str, object] = {}      # key -> module, so a program is loaded once per process
CACHE_LIMIT = 256                    # modules kept; every edit of a program builds a new one


class NativeUnavailable(Exception):
    """The native module cannot be built here (no compiler, no Python.h, a compile error)."""


def cache_dir() -> Path:
    base = os.environ.get("FABRICLAB_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "fabriclab"
    return root / "native"


def module_key(c_source: str) -> str:
    h = hashlib.sha256()
    h.update(c_source.encode())
    h.update(RUNTIME_HEADER.read_bytes())
    h.update(sys.implementation.cache_tag.encode())
    h.update((sysconfig.get_config_var("SOABI") or "").encode())
    h.update(" ".join(CFLAGS).encode())
    return h.hexdigest()[:24]


def _compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise NativeUnavailable("no C compiler (gcc) found")
    return cc


def _python_include() -> str:
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        raise NativeUnavailable(f"Python.h not found in {include} (install python3-dev)")
    return include


def build(c_source: str) -> Path:
    """The path of the built module for ``c_source`` (compiled now unless cached)."""
    key = module_key(c_source)
    name = f"fl_{key}"
    directory = cache_dir()
    target = directory / f"{name}{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    if target.exists():
        target.touch()       # the cache forgets the least recently used modules first
        return target
    cc, include = _compiler(), _python_include()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / f"{name}.lock", "w")
    except OSError as exc:
        raise NativeUnavailable(f"cannot use the cache directory {directory}: {exc.strerror}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)       # another process may be compiling this module
        if target.exists():
            return target
        source_path = directory / f"{name}.c"
        tmp_source = directory / f"{name}.c.{os.getpid()}.tmp"
        tmp_source.write_text(c_source.replace(MODULE_NAME_PLACEHOLDER, name))
        os.replace(tmp_source, source_path)
        tmp_target = directory / f"{name}.{os.getpid()}.tmp.so"
        cmd = [cc, *CFLAGS, f"-I{include}", f"-I{RUNTIME_HEADER.parent}", str(source_path), "-o", str(tmp_target)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NativeUnavailable(f"running {cc} failed: {exc}") from None
        if proc.returncode != 0:
            tmp_target.unlink(missing_ok=True)
            first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr.strip()[:200])
            raise NativeUnavailable(f"compiling {source_path} failed: {first}")
        os.replace(tmp_target, target)
    _prune(directory)
    return target


def _prune(directory: Path) -> None:
    """Keep the CACHE_LIMIT most recently used modules (a process that loaded a removed one
    keeps its mapping; the next process to need it builds it again)."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    modules = []
    for path in directory.glob(f"fl_*{suffix}"):
        try:
            modules.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue             # another process pruned it
    modules.sort(reverse=True)
    for _, path in modules[CACHE_LIMIT:]:
        stem = path.name[: -len(suffix)]
        for leftover in (path, directory / f"{stem}.c", directory / f"{stem}.lock"):
            leftover.unlink(missing_ok=True)


def load(c_source: str):
    """The extension module for ``c_source``, built if needed, imported once per process."""
    key = module_key(c_source)
    module = _loaded.get(key)
    if module is None:
        path = build(c_source)
        name = f"fl_{key}"
        loader = importlib.machinery.ExtensionFileLoader(name, str(path))
        spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
        try:
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
        except ImportError as exc:
            raise NativeUnavailable(f"loading {path} failed: {exc}") from None
        _loaded[key] = module
    return module


def load_shipped(path: Path):
    """The extension module built from a C source shipped with fabriclab (e.g. switch/native_tm.c)."""
    filename = Path(path).name
    try:
        source = Path(path).read_text()
    except OSError as exc:
        raise NativeUnavailable(f"cannot read {filename}: {exc.strerror}") from None
    return load(source)


_optional: dict[Path, object] = {}        # path -> module once loaded
_optional_logged: dict[Path, str] = {}    # path -> the last reason it was not


def optional_shipped(path: Path, what: str):
    """``load_shipped(path)``, or None where the Python path must serve: ``$FABRICLAB_ENGINE``
    is ``python`` or the module cannot be built here. ``what`` names the job in the one log
    line per process (and per change of reason) that says which path runs."""
    if os.environ.get("FABRICLAB_ENGINE") == "python":
        problem = "FABRICLAB_ENGINE=python"
    elif path in _optional:
        return _optional[path]
    else:
        try:
            module = load_shipped(path)
        except NativeUnavailable as exc:
            problem = str(exc)
        else:
            _optional[path] = module
            log.info("%s in C (%s)", what, path.name)
            return module
    if _optional_logged.get(path) != problem:
        _optional_logged[path] = problem
        log.info("%s in Python: %s", what, problem)
    return None

