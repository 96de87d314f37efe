import numpy as np
import pytest

from audio_factory import write_audio
from compliance.errors import AudioError
from compliance.ingest import load_audio


@pytest.fixture(scope="module")
def speech(shared):
    """A real Mandarin utterance, 16 kHz mono."""
    return load_audio(shared / "audio/zh/aishell_BAC009S0764W0121.wav")


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus"])
def test_decodes_every_container_to_16k_float32(tmp_path, speech, suffix):
    stereo = np.stack([speech.samples[0], np.roll(speech.samples[0], 8000) * 0.5])
    path = write_audio(tmp_path / f"call{suffix}", stereo, 16000)
    audio = load_audio(path)
    assert audio.sample_rate == 16000
    assert audio.samples.dtype == np.float32
    assert audio.channels == 2, "dual-channel recordings keep their channels apart"
    assert abs(audio.duration - speech.duration) < 0.15
    # the two channels are different signals: the second is the delayed, quieter copy
    assert np.abs(audio.samples[0]).max() > 1.5 * np.abs(audio.samples[1]).max() * 0.9


def test_real_dual_channel_call_keeps_agent_and_customer_apart(shared):
    audio = load_audio(shared / "audio/calls/dev01.stereo.flac")
    assert audio.channels == 2
    assert audio.duration == pytest.approx(84.652, abs=0.01)
    # the synthetic calls have exact digital silence on a channel outside its speaker's turns
    both = (np.abs(audio.samples[0]) > 0) & (np.abs(audio.samples[1]) > 0)
    assert both.mean() < 0.05


def test_resamples_44k_mp3(shared):
    audio = load_audio(shared / "audio/en/multilingual.mp3")
    assert audio.sample_rate == 16000 and audio.original_sample_rate != 16000


def test_stereo_file_with_identical_channels_is_mono(tmp_path, speech):
    path = write_audio(tmp_path / "dup.wav", np.stack([speech.samples[0]] * 2), 16000)
    audio = load_audio(path)
    assert audio.channels == 1 and audio.original_channels == 2


def test_same_content_same_hash(tmp_path, speech):
    a = write_audio(tmp_path / "a.wav", speech.samples, 16000)
    b = tmp_path / "b.wav"
    b.write_bytes(a.read_bytes())
    assert load_audio(a).sha256 == load_audio(b).sha256


@pytest.mark.parametrize("case, message", [
    ("empty", "empty file"),
    ("garbage", "not a readable audio file"),
    ("text", "not a readable audio file"),
    ("truncated", "not a readable audio file"),
    ("silent", "silent"),
    ("missing", "no such file"),
    ("directory", "not a file"),
])
def test_bad_input_is_a_clear_error(tmp_path, speech, case, message):
    path = tmp_path / "bad.wav"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(50_000))
    elif case == "text":
        path = tmp_path / "notes.mp3"
        path.write_text("this is not audio\n" * 100)
    elif case == "truncated":
        good = write_audio(tmp_path / "good.flac", speech.samples, 16000).read_bytes()
        path = tmp_path / "bad.flac"
        path.write_bytes(good[:60])
    elif case == "silent":
        write_audio(path, np.zeros((1, 32000), dtype=np.float32), 16000)
    elif case == "directory":
        path = tmp_path
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_over_long_and_oversized_input_is_refused(tmp_path, speech):
    path = write_audio(tmp_path / "long.wav", speech.samples, 16000)
    with pytest.raises(AudioError, match="limit"):
        load_audio(path, max_duration_s=1.0)
    with pytest.raises(AudioError, match="limit"):
        load_audio(path, max_file_bytes=1000)


def test_video_without_audio_stream_is_refused(tmp_path):
    import av

    path = tmp_path / "video.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height = 64, 48
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 40, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(AudioError, match="no audio stream"):
        load_audio(path)


@pytest.mark.parametrize("suffix", [".mp3", ".flac", ".m4a"])
def test_damage_inside_a_file_is_skipped_or_refused_never_a_crash(tmp_path, speech, suffix):
    data = bytearray(write_audio(tmp_path / f"good{suffix}", speech.samples, 16000).read_bytes())
    rng = np.random.default_rng(1)
    middle = len(data) // 2
    data[middle:middle + 2000] = rng.bytes(2000)
    path = tmp_path / f"damaged{suffix}"
    path.write_bytes(bytes(data))
    try:
        audio = load_audio(path)
    except AudioError as exc:
        assert "\n" not in str(exc)
    else:
        assert audio.duration > speech.duration * 0.3
