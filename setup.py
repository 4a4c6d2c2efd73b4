"""Build sakerd: the hot modules compiled by Cython where it can, pure Python otherwise.

The rule: every `sakerd/<name>.py` with a `sakerd/<name>.pxd` beside it is
compiled to the extension module `sakerd.<name>` (Cython 3, pure-Python mode:
the `.py` stays the one source, the `.pxd` adds the C types). Nothing else is
compiled, and adding a `.pxd` is all it takes to compile one more module.

Compiling is optional. Without Cython, without a C compiler (or Python's
headers), or when Cython or the compiler fails on one module, that module is
installed as pure Python with a warning and the install goes on. Two
environment variables change that:

- `SAKERD_PURE_PYTHON=1`: compile nothing (the same variable makes a
  compiled install import its `.py` modules at run time, see
  sakerd/compiled.py);
- `SAKERD_REQUIRE_COMPILED=1`: a module that fails to compile fails the
  build (CI sets it, so a broken compile cannot hide behind the pure build).

An editable install (`pip install -e .`) compiles nothing unless
`SAKERD_REQUIRE_COMPILED=1` is set: a developer edits the `.py` files and
runs them. `python setup.py build_ext --inplace` builds the extension modules
beside the sources on purpose.
"""

import glob
import importlib.machinery
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _env_flag(name):
    return os.environ.get(name, "") not in ("", "0")


PURE_PYTHON = _env_flag("SAKERD_PURE_PYTHON")
REQUIRE_COMPILED = _env_flag("SAKERD_REQUIRE_COMPILED")


def compiled_module_names():
    """The modules to compile: sakerd/<name>.py that have sakerd/<name>.pxd beside them."""
    names = []
    for pxd in sorted(glob.glob(os.path.join(HERE, "sakerd", "*.pxd"))):
        if os.path.isfile(pxd[:-len(".pxd")] + ".py"):
            names.append(os.path.basename(pxd)[:-len(".pxd")])
    return names


def extensions():
    if PURE_PYTHON:
        return []
    # -g0: no debug information; a third less compile time (CI) and a smaller install.
    return [Extension("sakerd." + name, [os.path.join("sakerd", name + ".py")],
                      extra_compile_args=["-g0"])
            for name in compiled_module_names()]


def remove_stale_extensions(build_lib, keep):
    """Delete build_lib/sakerd/<name>.<ext suffix> unless sakerd.<name> is in `keep`.

    The install copies all of build_lib: a module compiled by an earlier
    build (since failed, or its .pxd removed, or SAKERD_PURE_PYTHON=1 now)
    must not be installed beside its .py, where it would be the one imported.
    """
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for path in glob.glob(os.path.join(build_lib, "sakerd", "*")):
        name = os.path.basename(path)
        if name.endswith(suffixes) and "sakerd." + name.split(".", 1)[0] not in keep:
            os.unlink(path)


def warn(text):
    sys.stderr.write("WARNING: sakerd: %s\n" % text)


class optional_build_ext(build_ext):
    """build_ext that compiles each module it can and leaves the others pure Python.

    A module that fails (Cython, compiler) is dropped from self.extensions, so
    the install neither copies nor records it and its .py is what imports.
    """

    def run(self):
        self._build()
        if not self.inplace:
            remove_stale_extensions(self.build_lib, {ext.name for ext in self.extensions})

    def _build(self):
        if not self.extensions:
            return
        if getattr(self, "editable_mode", False) and not REQUIRE_COMPILED:
            warn("editable install: pure Python, nothing compiled")
            self.extensions = []
            return
        try:
            import Cython  # noqa: F401 (only whether it is there)
        except ImportError:
            self._give_up("Cython is not installed")
            return
        super().run()

    def build_extensions(self):
        # Each module in a thread of its own: Cython (in a process of its own,
        # its compiler is not thread-safe), then the C compiler.
        self.check_extensions_list(self.extensions)
        exts = list(self.extensions)
        with ThreadPoolExecutor(max(1, min(len(exts), os.cpu_count() or 1))) as pool:
            built = list(pool.map(self._build_one, exts))
        self.extensions = [ext for ext, ok in zip(exts, built) if ok]
        if self.extensions:
            sys.stderr.write("sakerd: compiled %s\n" % ", ".join(e.name for e in self.extensions))

    def _build_one(self, ext):
        """sakerd/<name>.py (+ .pxd) -> <build_temp>/cython/<name>.c -> the extension module."""
        source = ext.sources[0]
        if source.endswith(".py"):
            c_file = os.path.join(self.build_temp, "cython", os.path.basename(source)[:-3] + ".c")
            os.makedirs(os.path.dirname(c_file), exist_ok=True)
            out = subprocess.run([sys.executable, "-m", "cython", "-3", source, "-o", c_file],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                sys.stderr.write(out.stdout + out.stderr)
                return self._failed(ext, "Cython failed (exit status %d)" % out.returncode)
            ext.sources = [c_file]
        try:
            self.build_extension(ext)
        except Exception as e:  # CompileError, a missing gcc or Python.h, ...
            return self._failed(ext, "the C compiler failed: %s" % e)
        return True

    def _failed(self, ext, why):
        if REQUIRE_COMPILED:
            raise SystemExit("sakerd: %s: %s (SAKERD_REQUIRE_COMPILED is set)" % (ext.name, why))
        warn("%s stays pure Python: %s" % (ext.name, why))
        return False

    def _give_up(self, why):
        if REQUIRE_COMPILED:
            raise SystemExit("sakerd: %s (SAKERD_REQUIRE_COMPILED is set)" % why)
        warn("%s: installing pure Python" % why)
        self.extensions = []


class build_py_without_stale_extensions(build_py):
    """build_py that also clears build_lib of modules this build does not compile.

    Needed when nothing is to be compiled: then build_ext does not run at all.
    """

    def run(self):
        super().run()
        remove_stale_extensions(self.build_lib, {ext.name for ext in self.distribution.ext_modules or ()})


setup(ext_modules=extensions(),
      cmdclass={"build_ext": optional_build_ext, "build_py": build_py_without_stale_extensions})
