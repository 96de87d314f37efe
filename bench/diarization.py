"""Mono diarization, word attribution and role identification, measured on real references.

    python bench/diarization.py [--words] [--threads N] [--only sample,dev01,...]

* DER (pyannote.metrics, overlap scored) with collar 0 and collar 0.25 s (pyannote's `collar`:
  the total width removed around each reference boundary), and the diarization real-time factor
  (diarization seconds / audio seconds, model loading excluded), on
  - ../shared/audio/diar/sample.wav (pyannote's two-party telephone call) + sample.rttm,
  - the four 30 s AMI clips (pyannote_tests_*.wav) with their RTTM/UEM references,
  - the 8 synthetic mono calls in ../shared/audio/calls (RTTM: agent/customer).
* With --words [whisper|ref]: whisper (the project's transcriber) on each mono call, then
  `attribute_words` + `assign_roles`; a word's true speaker is the channel of the stereo
  version that carries more energy under it. Prints word attribution accuracy and whether the
  agent was identified, in mono (diarized) and in stereo (channel layout known, and unknown:
  roles from content only). Transcripts are cached in artifacts/bench_words/.
  RTF is wall time; "CPU/s" is process CPU seconds per audio second (all threads), which is
  what to compare when the machine is shared (on an idle 2-core machine RTF ~ CPU/s / 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "audio"
CACHE = ROOT / "artifacts" / "bench_words"

from compliance.diarize import get_diarizer, read_rttm  # noqa: E402
from compliance.ingest import load_audio  # noqa: E402
from compliance.types import Audio, SpeakerTurn, Word  # noqa: E402


def load(path: Path) -> Audio:
    return load_audio(path)


def annotation(turns: list[SpeakerTurn]):
    from pyannote.core import Annotation, Segment

    ann = Annotation()
    for i, t in enumerate(turns):
        ann[Segment(t.start, t.end), i] = t.speaker
    return ann


def read_uem(path: Path) -> dict:
    from pyannote.core import Segment, Timeline

    out = {}
    for line in path.read_text().splitlines():
        uri, _, start, end = line.split()[:4]
        out.setdefault(uri, Timeline()).add(Segment(float(start), float(end)))
    return out


def datasets(only: set[str] | None):
    diar = SHARED / "diar"
    items = [("sample", diar / "sample.wav", read_rttm(diar / "sample.rttm")["sample"], None, "telephone")]
    refs, uems = {}, {}
    for part in ("development", "test"):
        for uri, turns in read_rttm(diar / f"pyannote_tests_debug.{part}.rttm").items():
            refs[uri] = turns
        uems.update(read_uem(diar / f"pyannote_tests_debug.{part}.uem"))
    for uri in sorted(refs):
        items.append((f"ami-{uri}", diar / f"pyannote_tests_{uri}.wav", refs[uri], uems.get(uri), "AMI"))
    calls = SHARED / "calls"
    for rttm in sorted(calls.glob("dev*.rttm")):
        cid = rttm.stem
        items.append((cid, calls / f"{cid}.mono.flac", read_rttm(rttm)[cid], None, "synthetic"))
    return [it for it in items if not only or it[0] in only]


def der(ref, hyp, uem, collar: float) -> float:
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
    return float(metric(annotation(ref), annotation(hyp), uem=uem))


def true_roles_from_stereo(words: list[Word], stereo: Audio) -> list[str]:
    """Per word: 'agent' if channel 0 carries more energy under it, else 'customer'."""
    out = []
    x = stereo.samples
    for w in words:
        a, b = int(w.start * 16000), max(int(w.end * 16000), int(w.start * 16000) + 1)
        e0, e1 = float(np.square(x[0, a:b]).sum()), float(np.square(x[1, a:b]).sum())
        out.append("agent" if e0 >= e1 else "customer")
    return out


def transcribe_cached(cid: str, audio: Audio, channel: int = 0, tag: str = "mono") -> list[Word]:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{cid}.{tag}.json"
    if path.is_file():
        return [Word(**w) for w in json.loads(path.read_text(encoding="utf-8"))]
    from compliance.config import load_settings
    from compliance.models import resolve
    from compliance.transcribe import WhisperTranscriber

    global _WHISPER
    if "_WHISPER" not in globals():
        s = load_settings()
        _WHISPER = WhisperTranscriber(resolve("asr", s), compute_type=s.compute_type, beam_size=s.beam_size,
                                      batch_size=s.batch_size)
    words = _WHISPER.transcribe(audio.samples[channel], language="zh").words
    path.write_text(json.dumps([w.__dict__ for w in words], ensure_ascii=False), encoding="utf-8")
    return words


def reference_words(cid: str, channel: int | None = None) -> list[Word]:
    """Pseudo-words from the ground truth: one per character, spread evenly over its clause."""
    truth = json.loads((SHARED / "calls" / f"{cid}.json").read_text(encoding="utf-8"))
    words = []
    for turn in truth["turns"]:
        if channel is not None and turn["speaker"] != truth["channels"][str(channel)]:
            continue
        for seg in turn["segments"]:
            n = max(len(seg["text"]), 1)
            d = (seg["end"] - seg["start"]) / n
            words += [Word(ch, seg["start"] + i * d, seg["start"] + (i + 1) * d) for i, ch in enumerate(seg["text"])]
    return sorted(words, key=lambda w: (w.start, w.end))


def word_bench(cid: str, turns: list[SpeakerTurn], source: str = "whisper") -> dict:
    from compliance.align import attribute_words
    from compliance.roles import assign_roles

    calls = SHARED / "calls"
    mono, stereo = load(calls / f"{cid}.mono.flac"), load(calls / f"{cid}.stereo.flac")
    words = transcribe_cached(cid, mono) if source == "whisper" else reference_words(cid)
    truth = true_roles_from_stereo(words, stereo)
    utts = attribute_words([Word(**w.__dict__) for w in words], turns, language="zh")
    infos = assign_roles(utts)
    got = [w.role for u in utts for w in u.words]
    # attribute_words keeps every word and keeps them in time order
    n = len(truth)
    acc = sum(g == t for g, t in zip(got, truth)) / max(n, 1)
    agent = [i for i in infos if i.role == "agent"]
    # speaker purity independent of roles: best mapping of speakers onto the two channels
    spk = [w.speaker for u in utts for w in u.words]
    mapped = 0
    for s in set(spk):
        idx = [k for k, x in enumerate(spk) if x == s]
        mapped += max(sum(truth[k] == "agent" for k in idx), sum(truth[k] == "customer" for k in idx))
    # stereo: each channel transcribed alone, roles with the layout known and unknown
    st_utts = []
    from compliance.pipeline import split_at_pauses

    for ch in (0, 1):
        ch_words = (transcribe_cached(cid, stereo, ch, f"ch{ch}") if source == "whisper"
                    else reference_words(cid, ch))
        st_utts += split_at_pauses(ch_words, speaker=f"CH{ch}", channel=ch, language="zh")
    st_utts.sort(key=lambda u: (u.start, u.end))
    known = assign_roles(st_utts, channel_roles={0: "agent", 1: "customer"})
    blind = assign_roles(st_utts)
    return {
        "words": n,
        "word_acc": acc,
        "speaker_acc": mapped / max(n, 1),
        "gap_words": sum(w.gap for u in utts for w in u.words),
        "agent_ok": len(agent) >= 1 and all(
            sum(t == "agent" for t, w in zip(truth, [w for u in utts for w in u.words]) if w.speaker == a.speaker)
            > 0.5 * sum(1 for w in (w for u in utts for w in u.words) if w.speaker == a.speaker) for a in agent),
        "agent_conf": max((a.role_confidence for a in agent), default=0.0),
        "stereo_known_ok": any(i.speaker == "CH0" and i.role == "agent" for i in known),
        "stereo_blind_ok": any(i.speaker == "CH0" and i.role == "agent" for i in blind)
        and not any(i.speaker == "CH1" and i.role == "agent" for i in blind),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--words", nargs="?", const="whisper", choices=["whisper", "ref"],
                    help="also word attribution and roles: words from whisper (default; cached) or "
                         "'ref': one pseudo-word per ground-truth character, timed within its clause")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated item ids (sample, ami-dev00, dev01, ...)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    import warnings

    warnings.filterwarnings("ignore", message=".*uem.*approximated.*")
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found")
    import torch

    t0 = time.perf_counter()
    diarizer = get_diarizer()
    print(f"diarizer: {getattr(diarizer, 'name', type(diarizer).__name__)}  (loaded in "
          f"{time.perf_counter() - t0:.1f} s, torch threads {torch.get_num_threads()}, {os.cpu_count()} cores)")
    warm = load(SHARED / "diar" / "sample.wav")
    diarizer.diarize(warm)  # warm-up, not timed
    items = datasets(set(filter(None, args.only.split(","))) or None)
    print(f"{'item':<12}{'kind':<11}{'dur s':>7}{'ref spk':>8}{'hyp spk':>8}{'DER c0':>8}{'DER c.25':>9}{'RTF':>7}"
          f"{'CPU/s':>7}")
    groups: dict[str, list] = {}
    word_rows = []
    for name, wav, ref, uem, kind in items:
        audio = load(wav)
        t, c = time.perf_counter(), time.process_time()
        hyp = diarizer.diarize(audio)
        el, cpu = time.perf_counter() - t, time.process_time() - c
        d0, d25 = der(ref, hyp, uem, 0.0), der(ref, hyp, uem, 0.25)
        nref, nhyp = len({r.speaker for r in ref}), len({h.speaker for h in hyp})
        print(f"{name:<12}{kind:<11}{audio.duration:7.1f}{nref:8d}{nhyp:8d}{100 * d0:7.1f}%{100 * d25:8.1f}%"
              f"{el / audio.duration:7.3f}{cpu / audio.duration:7.3f}", flush=True)
        groups.setdefault(kind, []).append((audio.duration, d0, d25, el, cpu))
        if args.words and kind == "synthetic":
            word_rows.append((name, word_bench(name, hyp, args.words)))
    print()
    for kind, rows in groups.items():
        dur = sum(r[0] for r in rows)
        print(f"{kind:<11} mean DER c0 {100 * np.mean([r[1] for r in rows]):5.1f}%  c0.25 "
              f"{100 * np.mean([r[2] for r in rows]):5.1f}%  RTF {sum(r[3] for r in rows) / dur:.3f} "
              f"(CPU s per audio s {sum(r[4] for r in rows) / dur:.3f}) "
              f"({len(rows)} files, {dur:.0f} s)")
    if word_rows:
        print(f"\n{'call':<8}{'words':>6}{'role acc':>9}{'spk acc':>8}{'gap':>5}{'agent':>7}{'conf':>6}"
              f"{'stereo':>8}{'st-blind':>9}")
        for name, r in word_rows:
            print(f"{name:<8}{r['words']:6d}{100 * r['word_acc']:8.1f}%{100 * r['speaker_acc']:7.1f}%"
                  f"{r['gap_words']:5d}{str(r['agent_ok']):>7}{r['agent_conf']:6.2f}{str(r['stereo_known_ok']):>8}"
                  f"{str(r['stereo_blind_ok']):>9}")
        n = sum(r["words"] for _, r in word_rows)
        acc = sum(r["word_acc"] * r["words"] for _, r in word_rows) / max(n, 1)
        print(f"all     {n:6d}{100 * acc:8.1f}%   agent identified (mono) "
              f"{sum(r['agent_ok'] for _, r in word_rows)}/{len(word_rows)}, stereo "
              f"{sum(r['stereo_known_ok'] for _, r in word_rows)}/{len(word_rows)}, stereo w/o layout "
              f"{sum(r['stereo_blind_ok'] for _, r in word_rows)}/{len(word_rows)}")


if __name__ == "__main__":
    main()
