"""RapidOCR on the sample video's keyframes: captions found, batching equals one-at-a-time,
thread safety, and on-screen text spans over the known caption intervals."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from medialens.domain.moments import Modality
from medialens.media.ocr_lines import OcrLine
from medialens.media.pixels import as_rgb_array
from medialens.media.screen_text import FrameText, ScreenText, merge_screen_text
from medialens.media.shots import VideoAnalysis, analyze_video
from medialens.ml.base import reset_models
from medialens.ml.ocr import RapidOcrRecognizer, get_text_recognizer
from medialens.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import sample_video  # the script that writes the sample media, via sys.path above

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="session")
def analysis(video_samples: Path) -> VideoAnalysis:
    return analyze_video(video_samples / sample_video.VIDEO)


@pytest.fixture(scope="session")
def keyframe_lines(analysis: VideoAnalysis, recognizer: RapidOcrRecognizer) -> list[list[OcrLine]]:
    return recognizer.recognize([k.jpeg for k in analysis.keyframes])


def _texts(lines: list[OcrLine]) -> set[str]:
    return {line.text for line in lines}


def test_captions_are_read_on_the_keyframes_that_show_them(
    analysis: VideoAnalysis, keyframe_lines: list[list[OcrLine]]
) -> None:
    for caption in sample_video.CAPTIONS:
        showing = [
            lines
            for k, lines in zip(analysis.keyframes, keyframe_lines, strict=True)
            if caption.start <= k.time < caption.end
        ]
        assert showing, f"no keyframe inside {caption}"
        assert all(caption.text in _texts(lines) for lines in showing), (caption, showing)
        hidden = [
            lines
            for k, lines in zip(analysis.keyframes, keyframe_lines, strict=True)
            if not caption.start - 0.1 <= k.time < caption.end + 0.1
        ]
        assert all(caption.text not in _texts(lines) for lines in hidden), caption


def test_lines_carry_boxes_and_confidences(analysis: VideoAnalysis, keyframe_lines: list[list[OcrLine]]) -> None:
    index = next(i for i, k in enumerate(analysis.keyframes) if 9.5 <= k.time < 12.5)
    (line,) = [line for line in keyframe_lines[index] if line.text == "SHIPS 14 OCTOBER"]
    assert line.confidence > 0.9
    # drawtext put it centred at y=40 in a 640x360 frame, 40 px high glyphs.
    assert 20 <= line.top <= 50 and 70 <= line.bottom <= 100
    assert abs((line.left + line.right) / 2 - 320) < 20


def test_batched_equals_one_at_a_time(analysis: VideoAnalysis) -> None:
    # Big batches (as on a GPU) against RapidOCR's own one-image call on each keyframe.
    batched = RapidOcrRecognizer(intra_op_threads=1, det_batch_size=8, rec_batch_size=32)
    images = [as_rgb_array(k.jpeg) for k in analysis.keyframes]
    together = batched.recognize(images)
    engine = batched._engine
    for image, lines in zip(images, together, strict=True):
        reference = engine(np.ascontiguousarray(image[:, :, ::-1]))
        texts = list(reference.txts) if reference.txts is not None else []
        assert [line.text for line in lines] == texts
        for line, box, score in zip(
            lines, reference.boxes if texts else [], reference.scores if texts else [], strict=True
        ):
            assert np.allclose(np.asarray(line.box), box, atol=1.0)
            # A crop's padding depends on the widest crop in its batch: scores move a little.
            assert line.confidence == pytest.approx(score, abs=0.02)


def test_recognize_is_thread_safe(analysis: VideoAnalysis, recognizer: RapidOcrRecognizer) -> None:
    jpegs = [k.jpeg for k in analysis.keyframes]
    expected = [_texts(lines) for lines in recognizer.recognize(jpegs)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda jpeg: recognizer.recognize_one(jpeg), jpegs))
    assert [_texts(lines) for lines in results] == expected


def test_min_confidence_filters(recognizer: RapidOcrRecognizer) -> None:
    image = Image.new("RGB", (480, 120), "white")
    font = ImageFont.truetype(sample_video.font_path(), 40)
    ImageDraw.Draw(image).text((20, 30), "LOW CONTRAST", font=font, fill=(236, 236, 236))
    strict = RapidOcrRecognizer(intra_op_threads=1, min_confidence=0.999)
    loose = recognizer.recognize_one(np.asarray(image))
    assert all(line.confidence >= 0.999 for line in strict.recognize_one(np.asarray(image)))
    assert len(strict.recognize_one(np.asarray(image))) <= len(loose)
    assert recognizer.recognize([]) == []


def test_version_and_providers(recognizer: RapidOcrRecognizer) -> None:
    assert recognizer.version == "rapidocr-ppocrv6-small@3.10.0-det640+fp32"
    assert recognizer.providers[-1] == "CPUExecutionProvider"
    assert set(recognizer.model_files) == {"PP-OCRv6_det_small.onnx", "PP-OCRv6_rec_small.onnx"}
    # CPU: batches measured slower there (and padded crops cost memory and letters): one at a time.
    assert (recognizer.det_batch_size, recognizer.rec_batch_size) == (1, 1)
    cuda = RapidOcrRecognizer(providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert (cuda.det_batch_size, cuda.rec_batch_size) == (8, 32)


def test_recognizer_from_settings() -> None:
    reset_models()
    settings = Settings(ocr_min_confidence=0.7, ocr_det_limit_side_len=960)
    recognizer = get_text_recognizer(settings)
    assert recognizer is get_text_recognizer(settings)
    assert isinstance(recognizer, RapidOcrRecognizer) and recognizer.min_confidence == 0.7
    assert recognizer.version.endswith("-det960+fp32")
    reset_models()


def test_screen_text_spans_overlap_the_caption_intervals(
    analysis: VideoAnalysis, keyframe_lines: list[list[OcrLine]], recognizer: RapidOcrRecognizer
) -> None:
    frames = [FrameText.from_keyframe(k, lines) for k, lines in zip(analysis.keyframes, keyframe_lines, strict=True)]
    passages = merge_screen_text(frames)
    # Read in small chunks (as the heavy worker reads keyframe batches), the keyframes give the same.
    chunked = [
        FrameText.from_keyframe(keyframe, lines)
        for begin in range(0, len(analysis.keyframes), 4)
        for keyframe, lines in zip(
            analysis.keyframes[begin : begin + 4],
            recognizer.recognize([k.jpeg for k in analysis.keyframes[begin : begin + 4]]),
            strict=True,
        )
    ]
    artifact = ScreenText(
        ocr_model=recognizer.version, frames=chunked, passages=merge_screen_text(chunked, first_index=5)
    )
    assert len(artifact.frames) == len(analysis.keyframes)
    assert [(p.text, p.start, p.end) for p in artifact.passages] == [(p.text, p.start, p.end) for p in passages]
    assert artifact.passages[0].index == 5
    assert ScreenText.model_validate_json(artifact.model_dump_json()) == artifact
    assert all(p.modality is Modality.SCREEN_TEXT and p.confidence and p.confidence > 0.9 for p in passages)
    for caption in sample_video.CAPTIONS:
        (passage,) = [p for p in passages if caption.text in p.text]
        assert passage.start is not None and passage.end is not None
        assert passage.start < caption.end and passage.end > caption.start, (passage, caption)
        assert caption.start - 0.1 <= passage.start  # never before the caption appears
    # On flat backgrounds the hash runs time the captions to the frame.
    for caption in sample_video.CAPTIONS[1], sample_video.CAPTIONS[3]:
        (passage,) = [p for p in passages if p.text == caption.text]
        assert passage.start == pytest.approx(caption.start, abs=0.05)
        assert passage.end == pytest.approx(caption.end, abs=0.05)


def test_the_keyframe_text_gate_reads_the_frames_with_text_and_skips_the_rest(
    analysis: VideoAnalysis, keyframe_lines: list[list[OcrLine]]
) -> None:
    gated = RapidOcrRecognizer(text_gate_side=320)
    assert gated.version.endswith("-det640-gate320+fp32")
    frames = [k.jpeg for k in analysis.keyframes]
    # A frame with no text at all (a smooth photo-like gradient) is not read; every caption is.
    y, x = np.mgrid[0:720, 0:1280]
    plain = np.stack([x * 255 // 1280, y * 255 // 720, np.full_like(x, 120)], axis=-1).astype(np.uint8)
    lines = gated.recognize([*frames, plain])
    assert lines[-1] == [] and not gated.has_text(np.ascontiguousarray(plain[:, :, ::-1]))
    assert [_texts(found) for found in lines[:-1]] == [_texts(found) for found in keyframe_lines]
    with pytest.raises(ValueError, match="text_gate_side"):
        RapidOcrRecognizer(text_gate_side=640)


def test_keyframes_get_the_gated_recogniser_images_the_full_one() -> None:
    reset_models()
    try:
        settings = Settings()
        full, gated = get_text_recognizer(settings), get_text_recognizer(settings, keyframes=True)
        assert isinstance(full, RapidOcrRecognizer) and isinstance(gated, RapidOcrRecognizer)
        assert full.text_gate_side is None and gated.text_gate_side == settings.ocr_keyframe_text_gate == 320
        off = settings.model_copy(update={"ocr_keyframe_text_gate": None})
        assert get_text_recognizer(off, keyframes=True).version == full.version
        # One copy of the networks: the gated reader loads the full one's engine, not its own.
        gated.load()
        assert full.loaded and gated._engine is full._engine and gated.model_files == full.model_files
        assert gated.version != full.version and gated.providers == full.providers
        with pytest.raises(ValueError, match="engine_of"):
            RapidOcrRecognizer(text_gate_side=320, min_confidence=0.9, engine_of=full)
    finally:
        reset_models()
