"""The two builds (setup.py, sakerd/compiled.py): the modules with a .pxd
compiled by Cython, or pure Python; SAKERD_PURE_PYTHON=1 forces the pure one
at build and at run time; INFO server says which one runs; log lines name
the same module and line in both.

.ci/run sets SAKERD_EXPECT_COMPILED=1 for its run on the compiled install:
then the compiled build must be the one under test.
"""

import ast
import glob
import importlib.machinery
import os
import shutil
import socket
import subprocess
import sys

import pytest

from helpers import ROOT, SAKERD_DIR, sakerd_env, wait_for

EXPECT_COMPILED = os.environ.get("SAKERD_EXPECT_COMPILED") == "1"
PURE = os.environ.get("SAKERD_PURE_PYTHON", "") not in ("", "0")


def pxd_modules(package_dir=SAKERD_DIR):
    return sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(package_dir, "*.pxd")))


def has_extension_beside(name):
    return any(os.path.exists(os.path.join(SAKERD_DIR, name + suffix))
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def module_files(env_extra, names):
    """__file__ of sakerd.<name> for each name, as a fresh interpreter imports them."""
    code = "import importlib\nfor n in %r: print(importlib.import_module('sakerd.' + n).__file__)" \
        % (names,)
    out = subprocess.run([sys.executable, "-c", code], cwd="/", env=sakerd_env(**env_extra),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_the_compiled_build_is_the_one_under_test_when_ci_says_so():
    if not EXPECT_COMPILED:
        pytest.skip("SAKERD_EXPECT_COMPILED=1 is set by .ci/run's compiled run only")
    names = pxd_modules()
    assert names, "no .pxd in %s: nothing was meant to be compiled" % SAKERD_DIR
    assert not PURE
    files = module_files({}, names)
    assert [os.path.basename(f).split(".")[0] for f in files] == names
    assert all(f.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)) for f in files), files


def test_info_server_says_compiled_yes_exactly_when_every_pxd_module_is_an_extension(daemon):
    info = daemon.client().info("server")
    names = pxd_modules()
    compiled = bool(names) and not PURE and all(has_extension_beside(n) for n in names)
    assert info["compiled"] == ("yes" if compiled else "no")
    if EXPECT_COMPILED:
        assert info["compiled"] == "yes"


def test_sakerd_pure_python_imports_the_py_files_even_beside_compiled_ones(make_daemon):
    names = pxd_modules()
    files = module_files({"SAKERD_PURE_PYTHON": "1"}, names + ["log"])
    assert files == [os.path.join(SAKERD_DIR, n + ".py") for n in names + ["log"]]
    d = make_daemon(env={"SAKERD_PURE_PYTHON": "1"})
    assert d.client().info("server")["compiled"] == "no"


def log_calls(path):
    """[(format or None, line)] of the log(level, fmt, ...) calls in a .py file."""
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), path)
    calls = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and len(node.args) >= 2
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "log"):
            fmt = node.args[1]
            literal = isinstance(fmt, ast.Constant) and isinstance(fmt.value, str)
            calls.append((fmt.value if literal else None, node.lineno))
    return calls


def test_log_calls_of_compiled_modules_have_literal_formats_no_other_one_uses():
    # Compiled code has no Python frame: log() finds the line of such a call
    # by its format (sakerd/log.py), so the format must name one call.
    seen = {}
    for name in pxd_modules(os.path.join(ROOT, "sakerd")):
        for fmt, line in log_calls(os.path.join(ROOT, "sakerd", name + ".py")):
            where = "%s.py:%d" % (name, line)
            assert fmt is not None, "%s: log() with a format that is not a literal" % where
            assert fmt not in seen, "%s and %s: the same log format %r" % (seen[fmt], where, fmt)
            seen[fmt] = where


def source_line(module, text):
    with open(os.path.join(SAKERD_DIR, module + ".py")) as f:
        lines = [n for n, line in enumerate(f, 1) if text in line]
    assert len(lines) == 1, (module, text, lines)
    return lines[0]


@pytest.mark.parametrize("pure", [False, True], ids=["as-installed", "pure-python"])
def test_log_line_names_the_module_and_line_of_the_call_in_both_builds(make_daemon, pure):
    d = make_daemon("loglevel verbose\n", env={"SAKERD_PURE_PYTHON": "1"} if pure else None)
    with socket.create_connection(("127.0.0.1", d.port)) as s:
        addr = "%s:%d" % s.getsockname()
    # networking.accept_common_handler: compiled in the compiled build.
    want = "[VERBOSE] [networking:%d] Accepted %s\n" % (
        source_line("networking", 'log(LL_VERBOSE, "Accepted %s"'), addr)
    wait_for(lambda: want in d.log(), what=want.strip())
    # A pure module called by compiled code (the command dispatch) is named
    # by its own frame.
    d.client().config_set("loglevel", "notice")
    want = "[NOTICE] [cmd_server:%d] CONFIG SET loglevel changed from 'verbose' to 'notice'\n" % (
        source_line("cmd_server", 'log(LL_NOTICE, "%s %s", how, text)'))
    wait_for(lambda: want in d.log(), what=want.strip())


# ---- setup.py's rule, on a copy of the package with one .pxd ----------------------

def copy_tree(tmp_path, pxd=("util",)):
    """setup.py, its config and sakerd/*.py with .pxd files only for `pxd`."""
    for f in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, f), tmp_path / f)
    (tmp_path / "sakerd").mkdir()
    for f in glob.glob(os.path.join(ROOT, "sakerd", "*.py")):
        shutil.copy(f, tmp_path / "sakerd")
    for name in pxd:
        shutil.copy(os.path.join(ROOT, "sakerd", name + ".pxd"), tmp_path / "sakerd")
    return tmp_path


def build_inplace(tree, **env):
    # -O0 -g0: the rule is under test, not the optimizer; a build in seconds.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAKERD_")}
    clean["CFLAGS"] = "-O0 -g0"
    return subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tree,
                          env=dict(clean, **env), capture_output=True, text=True, timeout=300)


def built(tree):
    return sorted(os.path.basename(p).split(".")[0] for p in glob.glob(str(tree / "sakerd" / "*.so")))


def test_setup_compiles_exactly_the_modules_that_have_a_pxd(tmp_path):
    tree = copy_tree(tmp_path)
    # A .pxd Cython rejects: that module stays pure Python, the others compile.
    (tree / "sakerd" / "lua_patterns.pxd").write_text("cpdef int no_such_function(\n")
    out = build_inplace(tree)
    assert out.returncode == 0, out.stderr
    assert "WARNING: sakerd: sakerd.lua_patterns stays pure Python: Cython failed (exit status 1)\n" in out.stderr
    assert "sakerd: compiled sakerd.util\n" in out.stderr
    assert built(tree) == ["util"]


def test_setup_without_a_c_compiler_warns_and_installs_pure_python(tmp_path):
    tree = copy_tree(tmp_path)
    out = build_inplace(tree, CC="/nonexistent/cc")
    assert out.returncode == 0, out.stderr
    assert "WARNING: sakerd: sakerd.util stays pure Python: the C compiler failed: " in out.stderr
    assert built(tree) == []
    # ... unless a compiled build is required (CI).
    out = build_inplace(tree, CC="/nonexistent/cc", SAKERD_REQUIRE_COMPILED="1")
    assert out.returncode != 0
    assert "sakerd: sakerd.util: the C compiler failed: " in out.stderr
    assert built(tree) == []


def test_setup_with_sakerd_pure_python_compiles_nothing(tmp_path):
    tree = copy_tree(tmp_path)
    out = build_inplace(tree, SAKERD_PURE_PYTHON="1")
    assert out.returncode == 0, out.stderr
    assert "compiled" not in out.stderr
    assert built(tree) == []
