#!/usr/bin/env python3
"""Checks the source layout ARCHITECTURE.md describes:

- no source file over 500 lines of code (comments, blank lines and `mod tests` left out);
- `lib.rs` holds only docs, attributes, `mod` lines and `pub use` lines;
- no import cycle between files (`use crate::…`, `use super::…` and inline `crate::…`
  paths, outside test modules), nor between folders;
- nothing on the emitting threads' side (`capture/`, `handoff/`) imports the user-facing
  room (`api/`);
- no function over 50 lines (from its `fn` line to its closing brace, test modules left
  out), but those in `LONG_FUNCTIONS`, each with the reason it stays whole;
- the hand-off's counters are written only through `Handoff`'s methods: no counter field
  of `Handoff` (an atomic, or the `UploadCounters`) nor any field of `UploadCounters` is
  visible outside its module.
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
MAX_CODE_LINES = 500
HOT_PATH = ("capture/", "handoff/")
MAX_FUNCTION_LINES = 50
# Functions allowed past MAX_FUNCTION_LINES: "file:function" -> why it stays whole.
LONG_FUNCTIONS = {}
FN = re.compile(r"^(\s*)(?:pub(?:\([\w:]+\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")
# The structs whose counters only their own module may touch.
SEALED_STRUCTS = {"handoff/mod.rs": "Handoff", "handoff/counters.rs": "UploadCounters"}
USER_FACING = "api/"


def rel(path):
    return os.path.relpath(path, SRC).replace(os.sep, "/")


def without_tests(text):
    """The file's text before its `#[cfg(test)] mod tests` block."""
    m = re.search(r"^#\[cfg\(test\)\]\s*\nmod tests\b", text, re.M)
    return text[: m.start()] if m else text


def code_lines(text):
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("//"):
            out.append(line)
    return out


def expand(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r"\s+", "", tree)
    m = re.match(r"^(.*?)\{(.*)\}$", tree)
    if not m:
        return [tree]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for part in parts if part for p in expand(prefix + part)]


def module_dir(path):
    """The folder holding the children of the module `path` defines."""
    base = os.path.basename(path)
    if base in ("mod.rs", "lib.rs"):
        return os.path.dirname(path)
    return os.path.join(os.path.dirname(path), base[:-3])


def resolve(path, segments):
    """The file a `crate::`/`super::` path lands in, or None."""
    if segments[0] == "crate":
        here, rest = SRC, segments[1:]
        target = os.path.join(SRC, "lib.rs")
    elif segments[0] == "super":
        here = os.path.dirname(module_dir(path))
        rest = segments[1:]
        while rest and rest[0] == "super":
            here, rest = os.path.dirname(here), rest[1:]
        target = os.path.join(here, "mod.rs") if here != SRC else os.path.join(SRC, "lib.rs")
    else:
        return None
    for seg in rest:
        as_file = os.path.join(here, seg + ".rs")
        as_dir = os.path.join(here, seg, "mod.rs")
        if os.path.isfile(as_file):
            target, here = as_file, os.path.join(here, seg)
        elif os.path.isfile(as_dir):
            target, here = as_dir, os.path.join(here, seg)
        else:
            break
    return target


def imports(path, text):
    code = "\n".join(code_lines(without_tests(text)))
    found = set()
    for m in re.finditer(r"\buse\s+((?:crate|super)::[^;]*);", code):
        for p in expand(m.group(1)):
            found.add(tuple(p.split("::")))
    for m in re.finditer(r"(?<![\w:])((?:crate|super)(?:::\w+)+)", code):
        found.add(tuple(m.group(1).split("::")))
    targets = set()
    for segs in found:
        t = resolve(path, list(segs))
        if t and os.path.abspath(t) != os.path.abspath(path):
            targets.add(rel(t))
    return targets


def long_functions(text):
    """(name, first line, lines) of each function over MAX_FUNCTION_LINES."""
    lines = without_tests(text).split("\n")
    out = []
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m or line.rstrip().endswith((";", "}")):
            continue
        close = m.group(1) + "}"
        for j in range(i + 1, len(lines)):
            if lines[j].rstrip() == close:
                if j - i + 1 > MAX_FUNCTION_LINES:
                    out.append((m.group(2), i + 1, j - i + 1))
                break
    return out


def visible_counters(text, struct):
    """The counter fields of `struct` (atomics, or a struct of counters) declared visible
    beyond their module."""
    m = re.search(r"^pub(?:\([\w:]+\))? struct " + struct + r"\b[^{;]*\{(.*?)^\}", text, re.M | re.S)
    if not m:
        return []
    fields = re.findall(r"^\s*pub(?:\([\w:]+\))?\s+(\w+):\s*([^\n]+)", m.group(1), re.M)
    return [name for name, ty in fields if struct == "UploadCounters" or re.search(r"Atomic|Counters", ty)]


def room(path):
    """The folder a file belongs to; None for the shared top-level files."""
    return path.split("/")[0] if "/" in path else None


def cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    problems, graph = [], {}
    for root, _, files in os.walk(SRC):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            text = open(path, encoding="utf-8").read()
            r = rel(path)
            n = len(code_lines(without_tests(text)))
            if n > MAX_CODE_LINES:
                problems.append(f"{r}: {n} lines of code, more than {MAX_CODE_LINES}")
            for name, line, length in long_functions(text):
                if f"{r}:{name}" not in LONG_FUNCTIONS:
                    problems.append(
                        f"{r}:{line}: fn {name} is {length} lines, more than {MAX_FUNCTION_LINES} "
                        "(split it, or add it to LONG_FUNCTIONS with the reason it stays whole)"
                    )
            if r in SEALED_STRUCTS:
                for field in visible_counters(text, SEALED_STRUCTS[r]):
                    problems.append(
                        f"{r}: {SEALED_STRUCTS[r]}::{field} is a counter visible outside its module; "
                        "write it through a method named for what happened"
                    )
            if r == "lib.rs":
                for line in code_lines(text):
                    s = line.strip()
                    if not re.match(r"^(#!?\[|mod \w+;|pub use |pub mod |struct ReadmeDoctests;|[\w:{}, ]*[,}];?$|\w[\w:]*,?$)", s):
                        problems.append(f"lib.rs: more than docs, mod and pub use lines: {s}")
                continue
            graph[r] = imports(path, text) - {"lib.rs"}
            if r.startswith(HOT_PATH):
                for t in graph[r]:
                    if t.startswith(USER_FACING):
                        problems.append(f"{r} (emitting threads) imports {t} (user-facing)")
    for comp in cycles(graph):
        problems.append("import cycle between " + ", ".join(comp))
    rooms = {}
    for f, targets in graph.items():
        for t in targets:
            a, b = room(f), room(t)
            if a and b and a != b:
                rooms.setdefault(a, set()).add(b)
    for comp in cycles(rooms):
        problems.append("import cycle between folders " + ", ".join(comp))
    if problems:
        print("layout check failed:\n  " + "\n  ".join(problems))
        sys.exit(1)
    print(
        f"layout ok: {len(graph) + 1} files, no import cycles, none over {MAX_CODE_LINES} lines of code, "
        f"no function over {MAX_FUNCTION_LINES} lines but {len(LONG_FUNCTIONS)} allowed, hand-off counters sealed"
    )


if __name__ == "__main__":
    main()
