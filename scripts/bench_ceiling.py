"""The ceiling a pipeline is measured against: the same models and the same analysis, called one
file after another as a user of the libraries would, with no queues, state machine, registry,
artifacts or index.

Per file it does what the pipeline's steps do between them: documents are extracted and cut into
passages; images are read (OCR, labels, picture vector); videos get shots and keyframes, the
keyframes' text (the same text-gated OCR) and labels; sound gets one decode with VAD, sound
classes, the spoken language from a few windows and a transcript per chunk; then every passage is
embedded (multilingual, and English ones by the English model too). ``analyse`` returns how many
passages came out, so a ceiling that silently skipped work would show.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from medialens.domain.assets import MediaType
from medialens.domain.moments import Passage
from medialens.media.audio.chunking import ChunkingParams
from medialens.media.audio.events import event_passages, is_music_only
from medialens.media.audio.prepare import prepare_speech_audio
from medialens.media.audio.wav import read_wav
from medialens.media.detection import SNIFF_BYTES, DetectedType, detect_media_type
from medialens.media.documents.chunking import chunk_passages
from medialens.media.documents.extract import extract_document
from medialens.media.probe import probe_media
from medialens.media.screen_text import FrameText, merge_screen_text
from medialens.media.shots import VideoOptions, analyze_video
from medialens.media.transcript import ChunkTranscript, speech_passages, stitch
from medialens.media.visual import FrameLabels, ShotList, shot_passages
from medialens.ml.asr import get_speech_recognizer
from medialens.ml.clip import get_image_embedder
from medialens.ml.language import identify_language
from medialens.ml.ocr import get_text_recognizer
from medialens.ml.sound_events import get_sound_event_detector
from medialens.ml.text_embedding import get_english_embedder, get_text_embedder
from medialens.ml.visual_labels import get_image_labeler
from medialens.pipeline.audio import decide_language, language_windows
from medialens.pipeline.images import read_image
from medialens.pipeline.visual import LABELS_PER_KEYFRAME
from medialens.settings import Settings

BATCH = 32  # keyframes per model call, as the pipeline's keyframe batches


def load_models(s: Settings) -> None:
    """Loads every model an analysis with these settings uses."""
    for model in (
        get_speech_recognizer(s),
        get_text_recognizer(s),
        get_text_recognizer(s, keyframes=True),
        get_image_labeler(s),
        get_text_embedder(s),
        get_english_embedder(s),
        get_image_embedder(s),
        get_sound_event_detector(s) if s.sound_event_model else None,
    ):
        if model is not None:
            model.load()


@dataclass
class DirectAnalysis:
    """The models a user would load once, and what analysing with them produced."""

    settings: Settings
    passages: int = 0
    media_seconds: float = 0.0
    seconds_by_kind: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Called in sequence, as a user of the library would: one transcription at a time with
        # every core and faster-whisper's batches of 8 (what its own documentation shows, and on
        # 2 cores 10-15 % faster than one window at a time for a lone call), where the pipeline's
        # heavy worker runs a transcription per core, one window at a time.
        self.settings = self.settings.model_copy(update={"speech_num_workers": 1, "speech_batch_size": 8})

    def load(self) -> None:
        """Loads every model (its time is not the analysis's)."""
        load_models(self.settings)

    def analyse(self, path: Path) -> int:
        head = path.read_bytes()[:SNIFF_BYTES]
        detected = detect_media_type(path.name, head, path.stat().st_size)
        began = time.perf_counter()
        if detected.media_type in (MediaType.VIDEO, MediaType.AUDIO):
            passages = self._timeline(path)
        elif detected.media_type is MediaType.IMAGE:
            passages = self._image(path)
        else:
            passages = self._document(path, detected)
        analysed = time.perf_counter()
        self._embed(passages)
        self._add(detected.media_type.value, analysed - began)
        self._add("embedding", time.perf_counter() - analysed)
        self.passages += len(passages)
        return len(passages)

    def _add(self, part: str, seconds: float) -> None:
        self.seconds_by_kind[part] = round(self.seconds_by_kind.get(part, 0.0) + seconds, 3)

    def _document(self, path: Path, detected: DetectedType) -> list[Passage]:
        document = extract_document(path.read_bytes(), detected)
        return chunk_passages(document, words=self.settings.passage_words, overlap=self.settings.passage_overlap_words)

    def _image(self, path: Path) -> list[Passage]:
        s = self.settings
        return read_image(
            path,
            get_text_recognizer(s),
            min_confidence=s.ocr_min_confidence,
            labeler=get_image_labeler(s),
            min_label_probability=s.visual_label_min_probability,
            max_labels=s.visual_label_max,
            image_embedder=get_image_embedder(s),
        ).passages

    def _timeline(self, path: Path) -> list[Passage]:
        info = probe_media(path)
        self.media_seconds += info.duration_s or 0.0
        passages: list[Passage] = []
        if info.media_type is MediaType.VIDEO and info.video is not None and not info.video.attached_picture:
            passages += self._pictures(path)
        if info.audio is not None:
            passages += self._sound(path)
        return passages

    def _pictures(self, path: Path) -> list[Passage]:
        s = self.settings
        analysis = analyze_video(path, VideoOptions.from_settings(s))
        ocr, labeler, pictures = get_text_recognizer(s, keyframes=True), get_image_labeler(s), get_image_embedder(s)
        texts, labelled = [], []
        for begin in range(0, len(analysis.keyframes), BATCH):
            batch = analysis.keyframes[begin : begin + BATCH]
            jpegs = [k.jpeg for k in batch]
            lines = ocr.recognize(jpegs)
            labels = labeler.classify(jpegs, top_k=LABELS_PER_KEYFRAME)
            vectors = pictures.embed_images(jpegs) if pictures is not None else [None] * len(batch)
            for keyframe, read, shown, vector in zip(batch, lines, labels, vectors, strict=True):
                when = {"time": keyframe.time, "start": keyframe.start, "until": keyframe.until}
                texts.append(FrameText(**when, lines=read))
                image_vector = [float(x) for x in vector] if vector is not None else None
                labelled.append(
                    FrameLabels(**when, shot_index=keyframe.shot_index, labels=shown, image_vector=image_vector)
                )
        shots = ShotList.model_validate_json(analysis.model_dump_json()).shots
        return [
            *merge_screen_text(texts, min_confidence=s.ocr_min_confidence),
            *shot_passages(
                shots, labelled, min_probability=s.visual_label_min_probability, max_labels=s.visual_label_max
            ),
        ]

    def _sound(self, path: Path) -> list[Passage]:
        s = self.settings
        chunking = ChunkingParams(target_s=s.speech_chunk_seconds, overlap_s=s.speech_chunk_overlap_seconds)
        recognizer = get_speech_recognizer(s)
        with tempfile.TemporaryDirectory(prefix="medialens-ceiling-") as tmp:
            work = Path(tmp)
            prepared = prepare_speech_audio(path, work, chunking=chunking)
            events = []
            chunks = [c for c in prepared.chunks if c.has_speech and c.file is not None]
            if s.sound_event_model:
                events = get_sound_event_detector(s).detect_file(work / prepared.audio_file)
                chunks = [
                    c
                    for c in chunks
                    if not is_music_only(
                        events,
                        c.start,
                        c.end,
                        max_voice_seconds=s.sound_music_only_max_voice_seconds,
                        min_confidence=s.sound_event_min_confidence,
                    )
                ]
            language = s.speech_language
            # As the pipeline: speech in one chunk is identified as it is transcribed.
            if language is None and len(chunks) > 1:
                probabilities = [
                    recognizer.language_probabilities(read_wav(work / str(c.file), 0.0, s.language_window_seconds))
                    for c in language_windows(chunks, s.language_windows)  # type: ignore[arg-type]
                ]
                language = decide_language([], probabilities, s.language_min_probability).language
            transcribed = {
                c.index: recognizer.transcribe_wav(work / str(c.file), offset_s=c.start, language=language)
                for c in chunks
            }
        transcripts = [
            transcribed.get(c.index)
            or ChunkTranscript(offset_s=c.start, duration_s=c.duration, model_version=recognizer.version)
            for c in prepared.chunks
        ]
        transcript = stitch(transcripts, prepared.chunks)
        spoken = [
            p.model_copy(update={"language": transcript.language})
            for p in speech_passages(transcript, min_s=s.speech_passage_min_seconds, max_s=s.speech_passage_max_seconds)
        ]
        heard = event_passages(
            events, min_seconds=s.sound_event_min_seconds, min_confidence=s.sound_event_min_confidence
        )
        return [*spoken, *heard]

    def _embed(self, passages: list[Passage]) -> None:
        if not passages:
            return
        s = self.settings
        texts = [p.text for p in passages]
        languages = [p.language or identify_language(p.text).language for p in passages]
        get_text_embedder(s).embed(texts)
        english = get_english_embedder(s)
        in_english = [t for t, language in zip(texts, languages, strict=True) if language in (None, "en")]
        if english is not None and in_english:
            english.embed(in_english)
