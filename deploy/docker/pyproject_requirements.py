"""Requirements of pyproject.toml for the image builds.

    python pyproject_requirements.py [EXTRA...]          base dependencies plus the extras, one a line
    python pyproject_requirements.py --lock [EXTRA...]   exact versions of their whole dependency
                                                         closure as installed here (constraints.txt)

The Dockerfile installs the requirements before it copies the source, so a code change rebuilds
only the last, small layer; constraints.txt pins every version to what the test suite ran on.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, distribution

import tomllib

# Pinned by the Dockerfile's TORCH_VERSION instead: the CUDA build differs from the tested CPU one.
NOT_LOCKED = {"torch"}


def requirements(pyproject: str, extras: list[str]) -> list[str]:
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"pyproject_requirements: no extra {extra!r} in {pyproject}")
        reqs += optional[extra]
    return reqs


def lock(reqs: list[str]) -> list[str]:
    """Pins for the installed dependency closure of `reqs` (needs `packaging`, present in any venv)."""
    from packaging.requirements import Requirement

    pinned: dict[str, str] = {}
    stack = [Requirement(r) for r in reqs]
    while stack:
        req = stack.pop()
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in pinned or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        try:
            dist = distribution(req.name)
        except PackageNotFoundError as e:
            raise SystemExit(f"pyproject_requirements: {req.name} is not installed here; cannot lock it") from e
        pinned[name] = dist.version
        stack += [Requirement(r) for r in dist.requires or []]
    return [f"{n}=={v}" for n, v in sorted(pinned.items()) if n not in NOT_LOCKED]


def main(argv: list[str]) -> None:
    if argv[:1] == ["--lock"]:
        print("# Exact versions the images install: the dependency closure of pyproject.toml (base + engine)")
        print("# as installed in the tested venv. torch is pinned by the Dockerfile (TORCH_VERSION).")
        print(
            "# Regenerate: python deploy/docker/pyproject_requirements.py --lock engine > deploy/docker/constraints.txt"
        )
        print("\n".join(lock(requirements("pyproject.toml", argv[1:]))))
    else:
        print("\n".join(requirements("pyproject.toml", argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
