#!/usr/bin/env python3
"""No module includes one above it.

Each module under src/vigil/ declares the modules it builds on in its CMakeLists.txt
(`vigil_add_module(NAME ... DEPS vigil::a vigil::b ...)`). A source or header of a module may
include headers of itself and of the modules it depends on, directly or through them, and of
no other: a sink that includes vision/, or core/ that includes pipeline/, fails here. The
dependency graph must also be acyclic (CMake would not say so for header-only cycles).

usage: module_layers_test.py [SOURCE_ROOT]      exit 0: layering holds; 1: violations listed
       module_layers_test.py --self-test        checks that a planted violation is caught
"""
import pathlib
import re
import subprocess
import sys
import tempfile

if sys.argv[1:] == ["--self-test"]:
    with tempfile.TemporaryDirectory() as tmp:
        base = pathlib.Path(tmp) / "src" / "vigil"
        mods = {"core": "", "a": "vigil::core", "b": "vigil::core", "c": "vigil::a", "d": "vigil::c"}
        for name, dep in mods.items():
            (base / name).mkdir(parents=True)
            (base / name / "CMakeLists.txt").write_text(f"vigil_add_module({name}\n  SOURCES x.cpp\n  DEPS {dep})\n")
            (base / name / "x.cpp").write_text('#include "vigil/core/status.h"\n')
        (base / "d" / "x.cpp").write_text('#include "vigil/a/x.h"\n')  # allowed: d -> c -> a
        ok = subprocess.run([sys.executable, __file__, tmp], capture_output=True, text=True)
        (base / "a" / "x.cpp").write_text('#include "vigil/b/x.h"\n')  # a does not build on b
        bad = subprocess.run([sys.executable, __file__, tmp], capture_output=True, text=True)
    if ok.returncode != 0 or bad.returncode != 1 or "module a includes vigil/b/x.h" not in bad.stdout:
        print("module_layers self-test failed:", ok.stdout, bad.stdout)
        sys.exit(1)
    print("module_layers self-test: a transitive include passes, an include across layers fails")
    sys.exit(0)

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2])
src = root / "src" / "vigil"

deps = {}
for cmake in sorted(src.glob("*/CMakeLists.txt")):
    text = cmake.read_text()
    m = re.search(r"vigil_add_module\((\w+)(.*?)\)", text, re.S)
    if not m:
        continue
    name, body = m.group(1), m.group(2)
    public = re.search(r"\bDEPS\b(.*?)(?:\bPRIVATE_DEPS\b|\bSOURCES\b|$)", body, re.S)
    private = re.search(r"\bPRIVATE_DEPS\b(.*?)(?:\bDEPS\b|\bSOURCES\b|$)", body, re.S)
    listed = (public.group(1) if public else "") + " " + (private.group(1) if private else "")
    deps[name] = set(re.findall(r"vigil::(\w+)", listed))

if len(deps) < 5 and sys.argv[1:] == []:
    print(f"module_layers: found only {sorted(deps)} under {src}: wrong root?")
    sys.exit(1)

problems = []
for name, direct in deps.items():
    for d in direct:
        if d not in deps:
            problems.append(f"{name}: depends on unknown module {d}")


def closure(name, seen=None, stack=()):
    if name in stack:
        problems.append("dependency cycle: " + " -> ".join(stack + (name,)))
        return set()
    out = set()
    for d in deps.get(name, ()):
        out.add(d)
        out |= closure(d, None, stack + (name,))
    return out


allowed = {name: closure(name) | {name} for name in deps}
include = re.compile(r'^\s*#\s*include\s+"vigil/(\w+)/([^"]+)"', re.M)
checked = 0
for name in deps:
    for path in sorted((src / name).rglob("*")):
        if path.suffix not in (".h", ".hpp", ".cpp", ".cc"):
            continue
        for m in include.finditer(path.read_text(errors="replace")):
            checked += 1
            if m.group(1) not in allowed[name]:
                line = path.read_text(errors="replace")[: m.start()].count("\n") + 1
                problems.append(f"{path.relative_to(root)}:{line}: module {name} includes vigil/{m.group(1)}/{m.group(2)}, "
                                f"but {name} builds only on {sorted(allowed[name] - {name}) or 'nothing'}")

for p in sorted(set(problems)):
    print(p)
if problems:
    sys.exit(1)
print(f"module_layers: {len(deps)} modules, {checked} includes, all within each module's dependencies")
