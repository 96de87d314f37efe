"""The command line as a user runs it: real files, real exit codes, real database."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, text

from audio_factory import write_audio
from compliance.ingest import load_audio


def run(args, data_dir, **env):
    environ = {**os.environ, "COMPLIANCE_DATA_DIR": str(data_dir), "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", "compliance", *map(str, args)], capture_output=True,
                          text=True, env=environ, timeout=600)


def stored_calls(data_dir) -> int:
    db = data_dir / "compliance.db"
    if not db.exists():
        return 0
    engine = create_engine(f"sqlite:///{db}")
    if "call" not in inspect(engine).get_table_names():
        return 0
    with engine.connect() as conn:
        return conn.execute(text("select count(*) from call")).scalar_one()


@pytest.fixture(scope="module")
def two_party_wav(shared, tmp_path_factory):
    """A short dual-channel call made of two real Mandarin utterances: agent on 0, customer on 1."""
    a = load_audio(shared / "audio/zh/aishell_BAC009S0764W0121.wav").samples[0]
    b = load_audio(shared / "audio/zh/aishell_BAC009S0724W0121.wav").samples[0]
    gap = np.zeros(8000, dtype=np.float32)
    ch0 = np.concatenate([a, gap, np.zeros_like(b)])
    ch1 = np.concatenate([np.zeros_like(a), gap, b])
    return write_audio(tmp_path_factory.mktemp("calls") / "two_party.wav", np.stack([ch0, ch1]), 16000)


@pytest.mark.parametrize("content, expected", [
    (b"", "empty file"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10, "not a readable audio file"),
    ("silence", "silent"),
    ("long", "limit"),
])
def test_bad_input_exits_nonzero_with_one_line_and_stores_nothing(tmp_path, content, expected, two_party_wav):
    path = tmp_path / "call.wav"
    env = {}
    if content == "silence":
        write_audio(path, np.zeros((2, 16000), dtype=np.float32), 16000)
    elif content == "long":
        path.write_bytes(two_party_wav.read_bytes())
        env["COMPLIANCE_MAX_DURATION_S"] = "3"
    else:
        path.write_bytes(content)
    proc = run(["analyze", path], tmp_path / "data", **env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], proc.stderr
    assert stored_calls(tmp_path / "data") == 0


def test_missing_file_and_unknown_model(tmp_path, two_party_wav):
    proc = run(["analyze", tmp_path / "nope.wav"], tmp_path / "data")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = run(["analyze", two_party_wav, "--model", "no-such-model"], tmp_path / "data")
    assert proc.returncode == 3 and "unknown asr model" in proc.stderr and "Traceback" not in proc.stderr


def test_analyze_writes_versioned_json_and_subtitles(tmp_path, two_party_wav, whisper):
    data = tmp_path / "data"
    out = tmp_path / "out.json"
    proc = run(["analyze", two_party_wav, "--json", out], data)
    assert proc.returncode == 0, proc.stderr
    assert "agent" in proc.stdout and "customer" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["schema"] == "compliance.call" and doc["schema_version"] == 1
    assert doc["call"]["channels"] == 2 and len(doc["call"]["sha256"]) == 64
    assert {s["role"] for s in doc["speakers"]} == {"agent", "customer"}
    seg = doc["segments"][0]
    assert seg["role"] == "agent" and seg["words"]
    assert set(seg["words"][0]) >= {"text", "start", "end", "probability", "speaker", "role"}
    assert doc["segments"][-1]["role"] == "customer"
    assert doc["segments"][-1]["start"] > doc["segments"][0]["end"]
    assert stored_calls(data) == 1

    srt = tmp_path / "x.srt"
    assert run(["analyze", two_party_wav, "-f", "srt", "-o", srt], data).returncode == 0
    assert srt.read_text().startswith("1\n00:00:0") and "-->" in srt.read_text()
    vtt = run(["analyze", two_party_wav, "-f", "vtt"], data)
    assert vtt.stdout.startswith("WEBVTT") and "<v agent>" in vtt.stdout
    rttm = run(["analyze", two_party_wav, "-f", "rttm"], data)
    assert rttm.stdout.startswith("SPEAKER two_party 1 ") and " CH1 " in rttm.stdout
    assert stored_calls(data) == 1, "re-running on the same audio never duplicates it"


def test_batch_reports_each_file_and_fails_if_any_failed(tmp_path, two_party_wav, whisper):
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "good.wav").write_bytes(two_party_wav.read_bytes())
    (folder / "broken.mp3").write_bytes(b"\xff\xfb" + b"\x00" * 3000)
    proc = run(["analyze", folder, "--json", tmp_path / "json"], tmp_path / "data")
    assert proc.returncode == 1
    assert "1 analysed, 1 failed" in proc.stdout
    assert "broken.mp3" in proc.stdout and "failed" in proc.stdout
    assert (tmp_path / "json" / "good.json").is_file()
    assert not (tmp_path / "json" / "broken.json").exists()
    assert stored_calls(tmp_path / "data") == 1


def test_models_verify_passes_on_installed_weights(tmp_path, whisper):
    proc = run(["models", "verify", "whisper-base"], tmp_path / "data")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("ok") >= 4
