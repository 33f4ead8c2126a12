#!/usr/bin/env python3
"""The annotated modules compile under clang's thread-safety analysis with no finding.

Fields say which mutex guards them (GUARDED_BY), functions which mutex they need or must not
hold (REQUIRES / EXCLUDES): core/thread_annotations.h. GCC ignores the annotations; this test
compiles every source of the annotated modules with clang, the build's own flags (from its
compile_commands.json) plus -Wthread-safety -Werror, syntax and analysis only (no code is
generated), so a field read without its lock fails the build's tests.

usage: thread_safety_test.py BUILD_DIR SOURCE_ROOT   exit 0: clean; 1: findings printed
       thread_safety_test.py --self-test SOURCE_ROOT checks that a planted violation is caught
"""
import concurrent.futures
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tempfile

# The modules whose shared state is annotated.
MODULES = ["core", "concurrency", "source", "identity", "sink", "pipeline", "http", "harvest", "cluster"]
CHECK_FLAGS = ["-fsyntax-only", "-Wthread-safety", "-Werror", "-Wno-unknown-warning-option"]
# GCC-only options in the build's flags that clang would refuse.
GCC_ONLY = {"-Wno-restrict"}


def clang():
    for name in ("clang++", "clang++-14"):
        if shutil.which(name):
            return name
    sys.exit("thread_safety_test: clang++ is not installed (scripts/setup.sh installs it)")


def check(command, directory):
    result = subprocess.run(command, cwd=directory, capture_output=True, text=True)
    return result.returncode, result.stderr


def self_test(source_root):
    planted = """
#include "vigil/core/mutex.h"
namespace vigil {
struct Counter {
  Mutex mu;
  int count GUARDED_BY(mu) = 0;
  void good() { MutexLock lock(mu); ++count; }
  void bad() { ++count; }  // no lock: the analysis must say so
};
}  // namespace vigil
"""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "planted.cpp"
        path.write_text(planted)
        base = [clang(), "-std=c++20", "-I", str(pathlib.Path(source_root).resolve() / "src")] + CHECK_FLAGS
        bad_code, bad_out = check(base + [str(path)], tmp)
        path.write_text(planted.replace("void bad() { ++count; }", "void bad() { MutexLock lock(mu); ++count; }"))
        good_code, good_out = check(base + [str(path)], tmp)
    if bad_code == 0 or "requires holding mutex 'mu'" not in bad_out or good_code != 0:
        print("thread_safety self-test failed:\n", bad_out, good_out)
        return 1
    print("thread_safety self-test: a field written without its mutex fails, with it passes")
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--self-test":
        return self_test(sys.argv[2])
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    build, root = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]).resolve()
    entries = json.loads((build / "compile_commands.json").read_text())
    compiler = clang()
    jobs = []
    for entry in entries:
        source = pathlib.Path(entry["file"]).resolve()
        try:
            module = source.relative_to(root / "src" / "vigil").parts[0]
        except ValueError:
            continue
        if module not in MODULES:
            continue
        args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
        flags, skip = [], False
        for a in args[1:]:
            if skip:
                skip = False
                continue
            if a in ("-o", "-MF", "-MT"):
                skip = True
                continue
            if a in ("-c", "-MD") or a in GCC_ONLY or a == str(source) or a == entry["file"]:
                continue
            flags.append(a)
        jobs.append((str(source.relative_to(root)), [compiler] + flags + CHECK_FLAGS + [str(source)], entry["directory"]))
    if not jobs:
        print("thread_safety_test: no sources of", MODULES, "in", build / "compile_commands.json")
        return 1
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for (name, _, _), (code, err) in zip(jobs, pool.map(lambda j: check(j[1], j[2]), jobs)):
            if code != 0:
                failed += 1
                print(f"--- {name}\n{err}")
    print(f"thread_safety: {len(jobs)} sources of {', '.join(MODULES)} checked by {compiler}, {failed} with findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
