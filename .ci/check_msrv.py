#!/usr/bin/env python3
"""Fails when a dependency in Cargo.lock (every feature on) declares a rust-version newer than this crate's."""
import json
import subprocess
import sys

meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--locked", "--all-features"]))
root = next(p for p in meta["packages"] if p["id"] in meta["workspace_members"])
ours = root["rust_version"]


def key(v):
    return tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])


# Packages reachable from this crate through normal (not dev or build) dependencies.
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
normal, todo = set(), [root["id"]]
while todo:
    for dep in nodes[todo.pop()]["deps"]:
        if dep["pkg"] not in normal and any(k["kind"] is None for k in dep["dep_kinds"]):
            normal.add(dep["pkg"])
            todo.append(dep["pkg"])
too_new = [
    f'{p["name"]} {p["version"]} needs {p["rust_version"]}'
    for p in meta["packages"]
    if p["id"] in normal and p.get("rust_version") and key(p["rust_version"]) > key(ours)
]
if too_new:
    print(f"rust-version is {ours}, but:\n  " + "\n  ".join(too_new))
    sys.exit(1)
print(f"MSRV {ours}: every normal dependency agrees")
