"""The live-stream wire protocol: what a client sends, what the server answers.

Client -> server (WebSocket, authenticated like the API):
  1. one text frame, the start message (JSON):
       {"type": "start", "sample_rate": 16000 | 8000, "channels": 1 | 2, "agent_channel": 0 | 1,
        "encoding": "pcm_s16le", "language": "zh",
        "call": {"agent_id", "customer_id", "product", "campaign", "call_time"},   # all optional
        "partials": true}
  2. binary frames of raw PCM16 little-endian audio, interleaved when dual-channel, of any size
     (a frame may end in the middle of a sample: the rest comes with the next one)
  3. optionally {"type": "end"} (the call is over: the server finishes and sends the summary);
     {"type": "ping"} is answered with {"type": "pong"}.
  Closing the socket without "end" keeps what was received and stores it as an incomplete call.

Server -> client (text frames, JSON): see `EVENT_TYPES`; every event has "type" and "t" (seconds
of call audio received when it was sent)."""

from __future__ import annotations

from dataclasses import dataclass, field

ENCODINGS = {"pcm_s16le", "pcm16", "s16le", "pcm16le", "linear16"}
SAMPLE_RATES = (8000, 16000)
#: largest binary frame accepted (about 16 s of 16 kHz stereo); larger ones are refused, not cut
MAX_FRAME_BYTES = 1 << 20
MAX_TEXT_BYTES = 64 * 1024

EVENT_TYPES = {
    "started": "the stream is open: stream_id, the accepted format, server limits",
    "partial": "an utterance still being spoken: channel, speaker, role, start, end, text (may change)",
    "utterance": "a final utterance: id, channel, speaker, role, start, end, text; asr_wait_s and timing "
                 "(segment_end, cut_at: call seconds; asr_wait_s, asr_decode_s, batch, window_s: where the "
                 "time went)",
    "violation": "a rule hit, sent as soon as the utterance holding it is final (call-level ones "
                 "are provisional until the summary), or `early`: at the clause pause after the offending "
                 "words, while the speaker goes on (confirmed by the final words, or retracted)",
    "retracted": "an earlier provisional or early alert no longer holds (e.g. the disclosure was read after "
                 "all, or the final words do not bear an early alert out)",
    "warning": "the server is behind real time (lag_s), or a recoverable oddity",
    "error": "a bad frame or message (code, detail, fatal); the stream goes on unless fatal",
    "summary": "the end of the call: utterances, violations, missing disclosures, the post-call job",
    "pong": "answer to a ping",
}

#: WebSocket close codes
CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008  # a fatal protocol error
CLOSE_TRY_LATER = 1013  # over capacity
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403

CALL_KEYS = ("agent_id", "customer_id", "product", "campaign", "call_time")


class ProtocolError(Exception):
    def __init__(self, code: str, detail: str, fatal: bool = False) -> None:
        super().__init__(detail)
        self.code, self.detail, self.fatal = code, detail, fatal


@dataclass
class StartMessage:
    sample_rate: int = 16000
    channels: int = 2
    agent_channel: int | None = 0
    language: str | None = "zh"
    encoding: str = "pcm_s16le"
    call: dict = field(default_factory=dict)
    #: send partial transcripts (decoded only while the ASR worker has nothing final to do)
    partials: bool = True

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample of every channel."""
        return 2 * self.channels

    def to_json(self) -> dict:
        return {"type": "start", "sample_rate": self.sample_rate, "channels": self.channels,
                "agent_channel": self.agent_channel, "language": self.language, "encoding": self.encoding,
                "call": dict(self.call), "partials": self.partials}


def parse_start(msg: dict) -> StartMessage:
    """Validate a start message; ProtocolError('bad_start', ...) says what is wrong."""
    def bad(detail: str) -> ProtocolError:
        return ProtocolError("bad_start", detail)

    unknown = set(msg) - {"type", "sample_rate", "channels", "agent_channel", "language", "encoding", "call",
                          "partials"}
    if unknown:
        raise bad(f"unknown field(s) {', '.join(sorted(unknown))} in the start message")
    rate = msg.get("sample_rate", 16000)
    if not isinstance(rate, int) or isinstance(rate, bool) or rate not in SAMPLE_RATES:
        raise bad(f"sample_rate must be 8000 or 16000, not {rate!r}")
    channels = msg.get("channels", 1)
    if channels not in (1, 2) or isinstance(channels, bool):
        raise bad(f"channels must be 1 (mono) or 2 (dual-channel), not {channels!r}")
    encoding = str(msg.get("encoding", "pcm_s16le")).lower()
    if encoding not in ENCODINGS:
        raise bad(f"encoding must be pcm_s16le (16-bit little-endian PCM), not {msg.get('encoding')!r}")
    agent_channel = msg.get("agent_channel", 0 if channels == 2 else None)
    if channels == 2:
        if agent_channel not in (0, 1) or isinstance(agent_channel, bool):
            raise bad("agent_channel must be 0 or 1 for a dual-channel stream")
    elif agent_channel not in (None, 0):
        raise bad("a mono stream has only channel 0 (roles come from online speaker assignment)")
    else:
        agent_channel = None
    language = msg.get("language", "zh")
    if language in (None, "", "auto"):
        language = None
    elif not (isinstance(language, str) and language.isalpha() and len(language) <= 8):
        raise bad("language must be a code like zh or en, or auto")
    call = msg.get("call") or {}
    if not isinstance(call, dict):
        raise bad("call must be an object with agent_id, customer_id, product, campaign, call_time")
    extra = set(call) - set(CALL_KEYS)
    if extra:
        raise bad(f"unknown call field(s) {', '.join(sorted(extra))} (use {', '.join(CALL_KEYS)})")
    clean = {}
    for key in CALL_KEYS:
        value = call.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, (str, int, float)):
            raise bad(f"call.{key} must be a string")
        clean[key] = str(value).strip()[:128 if key == "agent_id" else 256]
    if "call_time" in clean:
        from datetime import datetime

        try:
            datetime.fromisoformat(clean["call_time"].replace("Z", "+00:00"))
        except ValueError:
            raise bad(f"call.call_time {clean['call_time']!r} is not an ISO 8601 date-time") from None
    partials = msg.get("partials", True)
    if not isinstance(partials, bool):
        raise bad("partials must be true or false")
    return StartMessage(sample_rate=rate, channels=channels, agent_channel=agent_channel, language=language,
                        encoding="pcm_s16le", call=clean, partials=partials)
