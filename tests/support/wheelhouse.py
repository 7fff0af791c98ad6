"""Fresh virtual environments installed without the network: a local wheelhouse holding the
project's own wheels (built here, with the real build backend) and wheels repacked from the
distributions this environment already has, then `pip install --no-index --find-links`.

pip runs isolated from the machine's configuration (no config file, no PIP_* variables),
so nothing but the wheelhouse can be installed: a dependency the wheelhouse lacks fails
the install instead of being fetched.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LIST_DISTRIBUTIONS = (
    "from importlib import metadata\nfor d in metadata.distributions(): print(d.metadata['Name'])"
)
SDK = ROOT / "sdk" / "python"


def isolated_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _pip(*args: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pip",
        *(("--python", python) if python != sys.executable else ()),
        *args,
    ]
    done = subprocess.run(command, env=isolated_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def build_wheel(project: Path, into: Path) -> Path:
    """The project's wheel, by its own build backend (setuptools, already installed)."""
    before = set(into.glob("*.whl"))
    _pip("wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(into), str(project))
    (built,) = set(into.glob("*.whl")) - before
    return built


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def repack(dist: metadata.Distribution, into: Path) -> Path:
    """A wheel of an installed distribution, from its RECORD (files outside site-packages,
    such as scripts, are left out) and its WHEEL tags."""
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    version = dist.version
    info = f"{name}-{version}.dist-info"
    own = next(
        (f.parts[0] for f in dist.files or [] if f.name == "METADATA" and len(f.parts) == 2), info
    )
    tags = [
        line.split(":", 1)[1].strip()
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    supported = {str(tag) for tag in sys_tags()}
    tag = next((tag for tag in tags if tag in supported), tags[0] if tags else "py3-none-any")
    wheel = into / f"{name}-{version}-{tag}.whl"
    rows: list[tuple[str, str, str]] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in dist.files or []:
            path = file.as_posix()
            if (
                path.startswith("..")
                or "__pycache__" in path
                or path.endswith((".pyc", "/RECORD", "INSTALLER", "REQUESTED", "direct_url.json"))
            ):
                continue
            top = path.split("/")[0]
            if top.endswith(".dist-info") and top != own:
                continue
            local = Path(str(dist.locate_file(file)))
            if not local.is_file():
                continue
            data = local.read_bytes()
            target = path if top != own else f"{info}/{path.split('/', 1)[1]}"
            archive.writestr(target, data)
            rows.append((target, _record_hash(data), str(len(data))))
        record = io.StringIO()
        writer = csv.writer(record, lineterminator="\n")
        writer.writerows([*rows, (f"{info}/RECORD", "", "")])
        archive.writestr(f"{info}/RECORD", record.getvalue())
    return wheel


def closure(
    requirements: list[str], extras: tuple[str, ...] = ()
) -> dict[str, metadata.Distribution]:
    """The installed distributions these requirements pull, with their markers evaluated."""
    found: dict[str, metadata.Distribution] = {}
    todo = [(Requirement(text), extras) for text in requirements]
    while todo:
        requirement, active = todo.pop()
        marker = requirement.marker
        if marker and not any(marker.evaluate({"extra": extra}) for extra in (*active, "")):
            continue
        key = canonicalize_name(requirement.name)
        if key in found:
            continue
        dist = metadata.distribution(requirement.name)
        found[key] = dist
        todo.extend((Requirement(text), tuple(requirement.extras)) for text in dist.requires or [])
    return found


@dataclass(frozen=True)
class Installed:
    venv: Path
    seconds: float
    distributions: frozenset[str]  # canonical names
    bytes_on_disk: int

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")


def _size(path: Path) -> int:
    return sum(
        file.stat().st_size for file in path.rglob("*") if file.is_file() and not file.is_symlink()
    )


def fresh_install(wheelhouse: Path, venv: Path, requirement: str) -> Installed:
    """A new venv (no system site-packages, no pip of its own) with `requirement` installed
    from the wheelhouse only; what it holds afterwards."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = Path(
        subprocess.run(
            [python, "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    empty = _size(site)
    started = time.perf_counter()
    _pip(
        "install",
        "--quiet",
        "--no-index",
        "--no-compile",
        "--find-links",
        str(wheelhouse),
        requirement,
        python=python,
    )
    seconds = time.perf_counter() - started
    listed = subprocess.run(
        [
            python,
            "-I",
            "-c",
            LIST_DISTRIBUTIONS,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return Installed(
        venv, seconds, frozenset(canonicalize_name(n) for n in listed), _size(site) - empty
    )


def wheelhouse_for(into: Path, projects: dict[str, Path]) -> Path:
    """Built wheels of `projects` (name → source folder) and repacked wheels of everything
    they need that this environment has."""
    into.mkdir(parents=True, exist_ok=True)
    requirements: list[str] = []
    for name, folder in projects.items():
        build_wheel(folder, into)
        requirements.extend(metadata.distribution(name).requires or [])
    own = {canonicalize_name(name) for name in projects}
    for key, dist in closure(requirements).items():
        if key not in own:
            repack(dist, into)
    return into
