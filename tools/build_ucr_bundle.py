"""Build ``jaxpapers/xit/_data/ucr_v1/``: the UCR/UEA sets of the XIT quick pool, shipped with
the package so that ``jaxpapers reproduce xit`` needs no time-series library.

The files are the ones sktime 1.2.0, aeon 1.6.0 and tslearn 0.10.0 ship (BSD licences), taken
byte for byte: each ``<Name>_<SPLIT>.ts`` is stored xz-compressed as ``<Name>_<SPLIT>.ts.xz`` and
tslearn's ``Trace.npz`` is copied as it is. ``MANIFEST.json`` records, for every file, where it
came from and the SHA-256 of its uncompressed bytes (the test suite checks both).

Usage (with the three packages installed, or their wheels unpacked into folders)::

    python tools/build_ucr_bundle.py [--sktime DIR] [--aeon DIR] [--tslearn DIR]

where each DIR is the package folder (the one holding ``datasets/data`` or ``.cached_datasets``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import lzma
import os
import shutil

VERSION = 1
OUT = os.path.join(os.path.dirname(__file__), os.pardir, "jaxpapers", "xit", "_data",
                   f"ucr_v{VERSION}")

#: set name -> the package whose copy is taken
SOURCES = {
    **{name: "sktime" for name in ("ACSF1", "ArrowHead", "BasicMotions", "GunPoint",
                                   "ItalyPowerDemand", "JapaneseVowels", "OSULeaf", "UnitTest",
                                   "PLAID")},
    "Covid3Month_disc": "aeon",
    "PickupGestureWiimoteZ": "aeon",
    "Trace": "tslearn",
}


def _package_dir(name: str, given: str | None) -> str:
    if given:
        return given
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed; pass --{name} DIR")
    return list(spec.submodule_search_locations)[0]


def _version(name: str, folder: str) -> str:
    parent = os.path.dirname(os.path.abspath(folder))
    for dist in importlib.metadata.distributions(path=[parent]):  # an unpacked wheel
        if dist.metadata["Name"] == name:
            return dist.version
    return importlib.metadata.version(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("sktime", "aeon", "tslearn"):
        parser.add_argument(f"--{name}", default=None)
    args = parser.parse_args()
    roots = {name: _package_dir(name, getattr(args, name)) for name in ("sktime", "aeon",
                                                                        "tslearn")}
    os.makedirs(OUT, exist_ok=True)
    files = {}
    for name, package in sorted(SOURCES.items()):
        root = roots[package]
        if package == "tslearn":
            pairs = [(os.path.join(root, ".cached_datasets", f"{name}.npz"), f"{name}.npz")]
        else:
            pairs = [(os.path.join(root, "datasets", "data", name, f"{name}_{split}.ts"),
                      f"{name}_{split}.ts.xz") for split in ("TRAIN", "TEST")]
        for source, target in pairs:
            with open(source, "rb") as f:
                raw = f.read()
            if target.endswith(".xz"):
                with open(os.path.join(OUT, target), "wb") as f:
                    f.write(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))
            else:
                shutil.copyfile(source, os.path.join(OUT, target))
            files[target] = {"set": name, "source": f"{package} {_version(package, root)}",
                             "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    manifest = {"version": VERSION, "files": files}
    with open(os.path.join(OUT, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, t)) for t in files)
    print(f"wrote {len(files)} files, {total / 1e6:.2f} MB, to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
