"""Text recognition (OCR) on images and keyframes: ``TextRecognizer`` and its RapidOCR runtime.

RapidOCR 3.10 ships PP-OCRv6 small detection and recognition ONNX models in its wheel, so
nothing is downloaded. Settings follow what was measured on these machines (94% word recall,
~180 ms per 720p frame on one thread): no angle classifier, and detection on the image scaled so
its longer side is at most 640 px.

What "batched" means here. ``RapidOCR.__call__`` takes one image; inside it, only recognition
batches (the text-line crops of that image, ``rec_batch_num`` at a time). ``recognize(images)``
runs RapidOCR's own stages over a list of images instead:

* detection: images whose detector input has the same shape (every keyframe of a video) go
  through the detection network together, ``det_batch_size`` per run, and each image's
  probability map is post-processed as RapidOCR does;
* recognition: the text-line crops of *all* the images are pooled, sorted by aspect ratio and
  recognised ``rec_batch_size`` per run, so batches are full and padding is small.

Texts and boxes equal one-image-at-a-time calls (tests check this; confidences move by a few
thousandths, as a crop's padding depends on its batch). Batches pay off on a GPU; on a CPU they
measured slower (larger tensors, no gain in parallelism with onnxruntime already using every
core), so by default the batch sizes depend on the provider: 8 images / 32 crops with CUDA,
1 image / 1 crop on CPU. ``scripts/bench_vision.py`` measures them. One crop per run rather than
RapidOCR's 6: a run pads its crops to the widest, and on scanned pages (lines up to 36 times as
wide as high) six per run took 12.8 s and a 1,021 MB peak for 21 pages where one took 10.4 s and
617 MB, and read 10 of 695 lines better (padding costs letters); on keyframes the same speed.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Sequence
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np

from medialens.media.ocr_lines import OcrLine
from medialens.media.pixels import ImageInput, RgbArray, as_rgb_array
from medialens.ml.base import InferenceModel, cached_model
from medialens.ml.onnx import select_providers
from medialens.settings import Settings, get_settings


class TextRecognizer(InferenceModel):
    """Images in, text lines out (reading order: top to bottom, then left to right)."""

    @abstractmethod
    def recognize(self, images: Sequence[ImageInput]) -> list[list[OcrLine]]:
        """One list of lines per image, in the order given. Safe to call from several threads."""

    def recognize_one(self, image: ImageInput) -> list[OcrLine]:
        return self.recognize([image])[0]

    def recognize_bgr(self, images: Sequence[RgbArray]) -> list[list[OcrLine]]:
        """``recognize`` for arrays in OpenCV's BGR channel order (what PDFium renders)."""
        return self.recognize([np.ascontiguousarray(image[:, :, ::-1]) for image in images])


class RapidOcrRecognizer(TextRecognizer):
    """PP-OCRv6 small (det + rec) through RapidOCR's pipeline stages, batched across images."""

    name = "rapidocr-ppocrv6-small"

    def __init__(
        self,
        *,
        min_confidence: float = 0.5,
        det_limit_side_len: int = 640,
        det_batch_size: int | None = None,
        rec_batch_size: int | None = None,
        intra_op_threads: int = 0,
        providers: Sequence[str] | None = None,
        det_model_path: Path | None = None,
        rec_model_path: Path | None = None,
        quantization: str = "fp32",
        text_gate_side: int | None = None,
        engine_of: RapidOcrRecognizer | None = None,
    ) -> None:
        """Batch sizes None: by provider (see the module docstring). ``det_model_path`` and
        ``rec_model_path`` replace the packaged ONNX models (e.g. a quantized copy, then say so with
        ``quantization``); ``intra_op_threads`` 0 is onnxruntime's default (one per core).
        ``text_gate_side``: first run the detector on the image scaled to this longer side, and
        read only the images where it finds any text (see ``has_text``); None reads every image.
        ``engine_of``: a recogniser with the same settings but the gate, whose loaded networks this
        one uses instead of loading its own copy (~70 MB): the keyframe reader is the image reader
        with a gate in front."""
        if (det_batch_size is not None and det_batch_size < 1) or (rec_batch_size is not None and rec_batch_size < 1):
            raise ValueError("batch sizes must be positive")
        if text_gate_side is not None and not 32 <= text_gate_side < det_limit_side_len:
            raise ValueError("text_gate_side must be at least 32 and below det_limit_side_len")
        self.text_gate_side = text_gate_side
        # No store: RapidOCR ships its weights. Providers are chosen now, as they set the batch sizes.
        requested = list(providers) if providers is not None else select_providers()
        super().__init__(quantization=quantization, providers=requested)
        on_gpu = "CUDAExecutionProvider" in requested
        self.min_confidence = min_confidence
        self.det_limit_side_len = det_limit_side_len
        self.det_batch_size = det_batch_size or (8 if on_gpu else 1)
        self.rec_batch_size = rec_batch_size or (32 if on_gpu else 1)
        self._intra_op_threads = intra_op_threads
        self._det_model_path = det_model_path
        self._rec_model_path = rec_model_path
        self._engine: Any = None
        self.model_files: dict[str, str] = {}  # file name -> sha256, filled by load()
        if engine_of is not None and self._engine_settings() != engine_of._engine_settings():
            raise ValueError("engine_of must have the same detector, recogniser, threads and providers")
        self._engine_of = engine_of

    def _engine_settings(self) -> tuple[Any, ...]:
        """What the loaded networks depend on (everything but the gate)."""
        return (
            self.min_confidence,
            self.det_limit_side_len,
            self.det_batch_size,
            self.rec_batch_size,
            self._intra_op_threads,
            self._requested_providers,
            self._det_model_path,
            self._rec_model_path,
            self.quantization,
        )

    @property
    def requested_version(self) -> str:
        # The detector's input size (and the gate's) changes what is found: part of the version.
        gate = f"-gate{self.text_gate_side}" if self.text_gate_side else ""
        return f"{package_version('rapidocr')}-det{self.det_limit_side_len}{gate}"

    def _load(self) -> None:
        if self._engine_of is not None:
            self._engine_of.load()
            self.model_files = dict(self._engine_of.model_files)
            self._active_providers = self._engine_of.providers
            self._engine = self._engine_of._engine
            return
        from rapidocr import RapidOCR

        assert self._requested_providers is not None  # the constructor chose them
        use_cuda = "CUDAExecutionProvider" in self._requested_providers
        params: dict[str, Any] = {
            "Global.use_cls": False,
            "Global.text_score": self.min_confidence,
            "Global.log_level": "warning",
            "Det.limit_type": "max",
            "Det.limit_side_len": self.det_limit_side_len,
            "Rec.rec_batch_num": self.rec_batch_size,
            "EngineConfig.onnxruntime.use_cuda": use_cuda,
            "EngineConfig.onnxruntime.intra_op_num_threads": self._intra_op_threads or -1,
        }
        if self._det_model_path is not None:
            params["Det.model_path"] = str(self._det_model_path)
        if self._rec_model_path is not None:
            params["Rec.model_path"] = str(self._rec_model_path)
        engine: Any = RapidOCR(params=params)
        # RapidOCR loads its models on first use; load both now, under InferenceModel's lock.
        det, rec = engine._load_det_model(), engine._load_rec_model()
        files = {}
        for session in (det.session, rec.session):
            path = Path(session.session._model_path) if hasattr(session.session, "_model_path") else None
            if path is not None and path.is_file():
                files[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        self.model_files = files
        self._active_providers = list(engine.text_det.session.session.get_providers())
        self._engine = engine

    def recognize(self, images: Sequence[ImageInput]) -> list[list[OcrLine]]:
        if not images:
            return []
        self.load()
        bgr = [np.ascontiguousarray(as_rgb_array(image)[:, :, ::-1]) for image in images]
        return self.recognize_bgr(bgr)

    def recognize_bgr(self, images: Sequence[RgbArray]) -> list[list[OcrLine]]:
        """``recognize`` for arrays already in OpenCV's BGR channel order (no conversion)."""
        return self._read(images, gated=bool(self.text_gate_side))

    def _read(self, images: Sequence[RgbArray], *, gated: bool) -> list[list[OcrLine]]:
        from rapidocr.ch_ppocr_det.utils import ResizeImgError as DetectorResizeError
        from rapidocr.ch_ppocr_rec import TextRecInput
        from rapidocr.utils.process_img import ResizeImgError, apply_vertical_padding, map_boxes_to_original

        self.load()
        if gated:
            with_text = [position for position, image in enumerate(images) if self.has_text(image)]
            if len(with_text) < len(images):
                return self._only(images, with_text)
        engine = self._engine
        detector = engine.text_det
        # RapidOCR's own preprocessing: clamp the size, pad very wide images, detector input. An
        # image that scales to nothing (a 20000x5 strip) holds no line to read: it gets none.
        readable: list[int] = []
        prepared: list[tuple[Any, dict[str, Any], Any]] = []
        for position, image in enumerate(images):
            try:
                resized, record = engine.preprocess_img(image)
                padded, record = apply_vertical_padding(resized, record, engine.width_height_ratio, engine.min_height)
                prepared.append((padded, record, detector.get_preprocess()(padded)))
            except (ResizeImgError, DetectorResizeError):
                continue
            readable.append(position)
        if len(readable) < len(images):
            return self._only(images, readable)

        boxes_per_image = self._detect(prepared)

        crops: list[Any] = []
        owners: list[tuple[int, int]] = []
        for number, ((padded, _, _), boxes) in enumerate(zip(prepared, boxes_per_image, strict=True)):
            for line, crop in enumerate(engine.crop_text_regions(padded, boxes)):
                crops.append(crop)
                owners.append((number, line))
        texts: list[str] = []
        scores: list[float] = []
        if crops:
            recognised = engine.text_rec(TextRecInput(img=crops, return_word_box=False))
            texts, scores = list(recognised.txts), [float(s) for s in recognised.scores]

        results: list[list[OcrLine]] = [[] for _ in images]
        mapped = [
            map_boxes_to_original(boxes.astype(np.float32), record, image.shape[0], image.shape[1])
            if len(boxes)
            else boxes
            for image, (_, record, _), boxes in zip(images, prepared, boxes_per_image, strict=True)
        ]
        for (number, line), text, score in zip(owners, texts, scores, strict=True):
            text = text.strip()
            if not text or score < self.min_confidence:
                continue
            corners = mapped[number][line]
            box = tuple((round(float(x), 1), round(float(y), 1)) for x, y in corners)
            confidence = round(min(max(score, 0.0), 1.0), 4)
            results[number].append(OcrLine(text=text, confidence=confidence, box=box))
        return results

    def _only(self, images: Sequence[RgbArray], positions: list[int]) -> list[list[OcrLine]]:
        """Reads the images at ``positions`` (in full: they passed the gate); the others get no line."""
        results: list[list[OcrLine]] = [[] for _ in images]
        if not positions:
            return results
        found = self._read([images[position] for position in positions], gated=False)
        for position, lines in zip(positions, found, strict=True):
            results[position] = lines
        return results

    def has_text(self, image: RgbArray) -> bool:
        """Whether the detector finds any text on the BGR image scaled to ``text_gate_side``: a
        pass at a sixth of the full detector's pixels, so a frame without words costs that and no
        more. (Measured on keyframes of our sample media and of real footage: every frame whose
        lines become on-screen text passes at 320 px.)"""
        import cv2  # the media extra, as RapidOCR itself

        detector = self._engine.text_det
        side = self.text_gate_side or self.det_limit_side_len
        height, width = image.shape[:2]
        scale = side / max(height, width)
        small: Any = image
        if scale < 1:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        try:
            found, _ = detector.postprocess_op(detector.session(detector.get_preprocess()(small)), small.shape[:2])
        except Exception:  # noqa: BLE001 - an image the small pass cannot take is read in full
            return True
        return len(found) > 0

    def _detect(self, prepared: Sequence[tuple[Any, dict[str, Any], Any]]) -> list[Any]:
        """Text boxes per image: same-shaped detector inputs share a run of the network."""
        detector = self._engine.text_det
        boxes: list[Any] = [np.zeros((0, 4, 2), dtype=np.int32)] * len(prepared)
        groups: dict[tuple[int, ...], list[int]] = {}
        for number, (_, _, tensor) in enumerate(prepared):
            if tensor is not None:
                groups.setdefault(tuple(tensor.shape), []).append(number)
        for members in groups.values():
            for start in range(0, len(members), self.det_batch_size):
                chunk = members[start : start + self.det_batch_size]
                batch = np.concatenate([prepared[n][2] for n in chunk]) if len(chunk) > 1 else prepared[chunk[0]][2]
                maps = detector.session(batch)
                for row, number in enumerate(chunk):
                    padded = prepared[number][0]
                    found, _ = detector.postprocess_op(maps[row : row + 1], padded.shape[:2])
                    if len(found):
                        boxes[number] = detector.sorted_boxes(found)
        return boxes


def get_text_recognizer(settings: Settings | None = None, *, keyframes: bool = False) -> TextRecognizer:
    """The process-wide recogniser for these settings (one model load per process). ``keyframes``:
    the one for video keyframes, which reads only the frames where a small detector pass finds
    text (``ocr_keyframe_text_gate``); images and scanned pages are always read in full."""
    settings = settings or get_settings()
    gate = settings.ocr_keyframe_text_gate if keyframes else None
    # The gated reader shares the ungated one's networks: one copy of the weights per process.
    engine_of = get_text_recognizer(settings) if gate else None
    key = (settings.ocr_min_confidence, settings.ocr_det_limit_side_len, settings.ocr_batch_size, gate)
    return cached_model(
        "text_recognizer",
        key,
        lambda: RapidOcrRecognizer(
            min_confidence=settings.ocr_min_confidence,
            det_limit_side_len=settings.ocr_det_limit_side_len,
            det_batch_size=settings.ocr_batch_size,
            text_gate_side=gate,
            engine_of=engine_of if isinstance(engine_of, RapidOcrRecognizer) else None,
        ),
    )
