"""Where and how a number was made: git state, device, the versions of every package the numbers depend on,
and the sha256 of every dataset file read. ``provenance(...)`` is the block results/<scale>/<id>/metrics.json
carries; ``locked_requirements()`` lists the pins of requirements.lock (`python -m claimbench.provenance lock`).
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

from claimbench import data
from claimbench.numerics import machine_facts

# Distributions whose versions can change a number or a figure (torch, torchvision and Python are top-level keys).
PACKAGES = ("numpy", "scipy", "pandas", "timm", "matplotlib", "seaborn", "PyYAML", "dvc")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def git_state() -> dict:
    """{'git_sha', 'git_sha_source', 'git_dirty'} of the code being run. A machine given a copy of the working
    tree (the GPU box: its .git, if any, is a stale snapshot) is told the commit it runs through env
    CLAIMBENCH_GIT_SHA, which then wins over git; git_dirty is then unknown (None). What the pipeline itself
    rewrites mid-run (lock, results, README table) does not make the code dirty."""
    env_sha = os.environ.get("CLAIMBENCH_GIT_SHA")
    if env_sha:
        return {"git_sha": env_sha, "git_sha_source": "env CLAIMBENCH_GIT_SHA", "git_dirty": None}
    sha = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!dvc.lock", ":!results",
                  ":!README.md")
    return {"git_sha": sha or None, "git_sha_source": "git" if sha else None,
            "git_dirty": bool(status) if status is not None else None}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Distribution name -> installed version (None: not installed, e.g. dvc on the GPU box). Read from the
    installed metadata: nothing is imported."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(device: torch.device, wall_s: float, seeds: list[int], scale: str, extra: dict | None = None) -> dict:
    """Where and how a number was made. git_dirty: the tracked code/config had uncommitted changes.
    packages: PACKAGES' versions; data_files: path -> sha256 of each dataset file this process read (an
    `extra` data_files, e.g. the train stage's record, wins)."""
    import torchvision

    read = data.files_read()
    return {
        **git_state(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "python": platform.python_version(),
        "packages": package_versions(),
        "device": device_name(device),
        **machine_facts(),
        "scale": scale,
        "seeds": list(seeds),
        "wall_s": round(float(wall_s), 1),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        **({"data_files": read} if read else {}),
        **(extra or {}),
    }


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string ('PyYAML>=6; extra == "x"' -> 'pyyaml')."""
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)).lower()


def locked_requirements(dist: str = "claimbench", extras: tuple[str, ...] = ("dev", "ray")) -> dict[str, str]:
    """Normalised name -> installed version of every distribution `dist`[extras] needs, transitively, on this
    platform and Python (markers evaluated; the distribution itself left out): the pins of requirements.lock."""
    from packaging.markers import Marker

    def needs(name: str, with_extras: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
        out = []
        for req in metadata.requires(name) or []:
            spec, _, marker = req.partition(";")
            envs = [{"extra": e} for e in with_extras] or [{"extra": ""}]
            if marker.strip() and not any(Marker(marker).evaluate(env) for env in envs):
                continue
            wanted = re.search(r"\[([^\]]*)\]", spec)
            out.append((_name(spec), tuple(sorted(x.strip() for x in wanted.group(1).split(","))) if wanted else ()))
        return out

    pins, seen, todo = {}, set(), needs(dist, extras)
    while todo:
        name, with_extras = todo.pop()
        if (name, with_extras) in seen:
            continue
        seen.add((name, with_extras))
        pins[name] = metadata.version(name)
        todo += needs(name, with_extras)
    return dict(sorted(pins.items()))


def main(argv: list[str] | None = None) -> int:
    """`python -m claimbench.provenance lock`: print requirements.lock for this environment."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["lock"]:
        print("usage: python -m claimbench.provenance lock > requirements.lock", file=sys.stderr)
        return 2
    print("# Exact versions setup.sh installs (pip install -c requirements.lock -e \".[dev,ray]\"):")
    print(f"# claimbench[dev,ray]'s dependencies, transitively, as installed on Python {platform.python_version()} "
          f"({sys.platform}).")
    print("# Regenerate after changing a dependency: python -m claimbench.provenance lock > requirements.lock")
    for name, version in locked_requirements().items():
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
