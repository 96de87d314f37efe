"""ASR accuracy and speed: our transcriber against plain faster-whisper on the same model.

    python bench/asr.py [--calls] [--threads N]

Prints CER (Mandarin, after Traditional->Simplified, punctuation and number normalisation) and WER
(English, lower-cased, punctuation stripped) on the real clips in ../shared/audio, and the real-time
factor (processing seconds / audio seconds), side by side with `WhisperModel.transcribe` called
plainly (same weights, int8, beam 5, language given). `--calls` adds the 8 synthetic sales calls
(each channel transcribed separately, CER against the concatenated turns)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import cn2an
import jiwer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "audio"

from compliance.config import load_settings  # noqa: E402
from compliance.ingest import load_audio  # noqa: E402
from compliance.models import resolve  # noqa: E402
from compliance.textnorm import to_simplified  # noqa: E402
from compliance.transcribe import WhisperTranscriber  # noqa: E402

PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def norm_zh(text: str) -> str:
    text = to_simplified(text)
    try:
        text = cn2an.transform(text, "an2cn")
    except Exception:  # cn2an refuses a few odd digit strings; compare them as written
        pass
    return PUNCT.sub("", text)


def norm_en(text: str) -> str:
    return " ".join(PUNCT.sub(" ", text.lower()).split())


def load_refs(lang: str):
    with open(SHARED / lang / "refs.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            yield row["id"], SHARED / lang / row["wav"], row["ref"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", action="store_true", help="also the synthetic sales calls")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found: the bench reads ../shared beside the checkout")

    from faster_whisper import WhisperModel

    settings = load_settings()
    model = resolve("asr", settings)
    threads = args.threads or os.cpu_count() or 1
    ours = WhisperTranscriber(model, compute_type="int8", beam_size=5, batch_size=settings.batch_size,
                              cpu_threads=threads)
    plain = WhisperModel(model.location, device="cpu", compute_type="int8", cpu_threads=threads)

    def run_plain(samples, language):
        segments, info = plain.transcribe(samples, language=language, beam_size=5)
        return "".join(s.text for s in segments) if language == "zh" else " ".join(s.text for s in segments)

    def run_ours(samples, language):
        transcript = ours.transcribe(samples, language=language)
        joiner = "" if language == "zh" else " "
        return joiner.join(s.text for s in transcript.segments)

    items = [("zh", *r) for r in load_refs("zh")] + [("en", *r) for r in load_refs("en")]
    if args.calls:
        for meta in sorted((SHARED / "calls").glob("dev*.json")):
            truth = json.loads(meta.read_text(encoding="utf-8"))
            for ch, role in truth["channels"].items():
                ref = "".join(t["text"] for t in truth["turns"] if t["speaker"] == role)
                items.append(("call", f"{truth['id']}.ch{ch}", (SHARED / "calls" / truth["audio"]["stereo"], int(ch)), ref))

    totals = {k: {"audio": 0.0, "plain_t": 0.0, "ours_t": 0.0, "plain_e": [], "ours_e": [], "raw_e": []}
              for k in ("zh", "en", "call")}
    print(f"model {model.name} ({model.location}), int8, beam 5, {threads} threads, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{'clip':32} {'dur':>6} {'plain raw':>10} {'plain+t2s':>10} {'ours':>8} {'RTF plain':>10} {'RTF ours':>9}")
    for kind, ident, source, ref in items:
        if isinstance(source, tuple):
            audio = load_audio(source[0])
            samples = audio.samples[source[1]]
        else:
            audio = load_audio(source)
            samples = audio.samples[0]
        lang = "en" if kind == "en" else "zh"
        run_plain(samples[:16000], lang)  # warm-up outside the timing
        t0 = time.perf_counter()
        hyp_plain = run_plain(samples, lang)
        t1 = time.perf_counter()
        hyp_ours = run_ours(samples, lang)
        t2 = time.perf_counter()
        if lang == "zh":
            raw = jiwer.cer(PUNCT.sub("", ref), PUNCT.sub("", hyp_plain) or "∅")
            e_plain = jiwer.cer(norm_zh(ref), norm_zh(hyp_plain) or "∅")
            e_ours = jiwer.cer(norm_zh(ref), norm_zh(hyp_ours) or "∅")
        else:
            raw = e_plain = jiwer.wer(norm_en(ref), norm_en(hyp_plain) or "∅")
            e_ours = jiwer.wer(norm_en(ref), norm_en(hyp_ours) or "∅")
        dur = len(samples) / 16000
        tot = totals[kind]
        tot["audio"] += dur
        tot["plain_t"] += t1 - t0
        tot["ours_t"] += t2 - t1
        tot["plain_e"].append((e_plain, len(norm_zh(ref) if lang == "zh" else norm_en(ref).split())))
        tot["ours_e"].append((e_ours, tot["plain_e"][-1][1]))
        tot["raw_e"].append((raw, tot["plain_e"][-1][1]))
        print(f"{ident:32} {dur:6.1f} {raw:10.1%} {e_plain:10.1%} {e_ours:8.1%} "
              f"{(t1 - t0) / dur:10.3f} {(t2 - t1) / dur:9.3f}")

    def pooled(errors):
        n = sum(w for _, w in errors)
        return sum(e * w for e, w in errors) / n if n else float("nan")

    print("\nsummary (error rates pooled over reference length)")
    print(f"{'set':8} {'metric':6} {'plain raw':>10} {'plain+t2s':>10} {'ours':>8} {'RTF plain':>10} {'RTF ours':>9} {'speed-up':>9}")
    for kind, tot in totals.items():
        if not tot["audio"]:
            continue
        metric = "WER" if kind == "en" else "CER"
        rp, ro = tot["plain_t"] / tot["audio"], tot["ours_t"] / tot["audio"]
        print(f"{kind:8} {metric:6} {pooled(tot['raw_e']):10.1%} {pooled(tot['plain_e']):10.1%} "
              f"{pooled(tot['ours_e']):8.1%} {rp:10.3f} {ro:9.3f} {rp / ro:8.2f}x")


if __name__ == "__main__":
    main()
