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
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

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


def translate(job):
    """Cython, in a worker process: (name, [.py], build_dir) -> ([.c], None) or (None, error)."""
    name, sources, build_dir = job
    from Cython.Build import cythonize
    try:
        (done,) = cythonize([Extension(name, sources)], build_dir=build_dir,
                            compiler_directives={"language_level": "3"}, quiet=True)
    except Exception as e:  # Cython reports the error itself on stderr
        return None, str(e) or type(e).__name__
    return done.sources, None


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
        # Cython's compiler is not thread-safe: every module is translated in
        # a process of its own, then the C compiler runs on them in threads.
        self.check_extensions_list(self.extensions)
        exts = list(self.extensions)
        workers = max(1, min(len(exts), os.cpu_count() or 1))
        build_dir = os.path.join(self.build_temp, "cython")
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(translate, [(e.name, e.sources, build_dir) for e in exts]))
        translated = []
        for ext, (sources, error) in zip(exts, results):
            if error is not None:
                self._failed(ext, "Cython failed: %s" % error)
            else:
                ext.sources = sources
                translated.append(ext)
        with ThreadPoolExecutor(workers) as pool:
            built = list(pool.map(self._compile, translated))
        self.extensions = [ext for ext, ok in zip(translated, built) if ok]
        if self.extensions:
            sys.stderr.write("sakerd: compiled %s\n" % ", ".join(e.name for e in self.extensions))

    def _compile(self, ext):
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
