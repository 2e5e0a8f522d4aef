"""The language of a text (py3langid: a naive Bayes model over byte n-grams that ships in the
package, BSD-3-Clause, 97 languages): a moment's language, which voice narrates a document, and
which encoders answer a search question.

The package ships its model LZMA-compressed, and unpacking it costs half a second of CPU in every
process that asks (a CLI search routing its question included). In the embedded profile, whose
commands are short-lived processes sharing one model cache, the first process to unpack it keeps
the arrays there (``<model cache>/py3langid/``, 69 MB, named after the packaged file's size and
time so a reinstall writes a new one), and later ones load those in a fifth of the time or less:
the same arrays, the same answers. Elsewhere (a Lambda's fresh /tmp, an image's cache) a copy is
read if one is there and never written; where none can be kept every process unpacks the
packaged file, as before.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
import zipfile
from array import array
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from medialens.settings import Profile, get_settings

log = logging.getLogger(__name__)

# Enough text to decide on: a sample from the start and the middle of the document.
_SAMPLE_CHARACTERS = 4000
# Below this probability (or on too little text) the answer is "unknown".
MIN_PROBABILITY = 0.8
MIN_CHARACTERS = 20


class TextLanguage(BaseModel):
    language: str | None
    probability: float


# (nb_ptc, nb_pc, nb_classes, tk_nextmove, tk_row, tk_output): py3langid.modelio.load_model's result.
LanguageModel = tuple[Any, Any, list[str], "array[int]", "array[int]", list[int]]


@functools.cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

    packaged = Path(MODEL_DIR) / MODEL_FILE
    unpacked = _unpacked_path(packaged)
    model = _read_unpacked(unpacked) if unpacked is not None else None
    if model is None:
        from py3langid.modelio import load_model  # type: ignore[import-untyped]

        model = load_model(packaged)
        if unpacked is not None and get_settings().profile is Profile.EMBEDDED:
            _write_unpacked(unpacked, model)
    ptc, pc, classes, nextmove, row, output = model
    # As LanguageIdentifier.from_model_file builds it from the packaged file.
    return LanguageIdentifier(np.asarray(ptc), np.asarray(pc), classes, nextmove, output, norm_probs=True, tk_row=row)


def _unpacked_path(packaged: Path) -> Path | None:
    try:
        stat = packaged.stat()
        folder = get_settings().models_dir / "py3langid"
    except (OSError, ValueError):
        return None
    return folder / f"model-{stat.st_size}-{stat.st_mtime_ns}.npz"


def _read_unpacked(path: Path) -> LanguageModel | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return (
                data["ptc"],
                data["pc"],
                [str(label) for label in data["classes"].tolist()],
                _as_array(data["nextmove"]),
                _as_array(data["row"]),
                [int(feature) for feature in data["output"].tolist()],
            )
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        log.warning("unpacked language model %s is unreadable (%s); it will be replaced", path, error)
        return None


def _as_array(values: npt.NDArray[Any]) -> array[int]:
    """The stdlib array of unsigned integers the identifier walks (as the package loads it)."""
    out = array(values.dtype.char)
    out.frombytes(np.ascontiguousarray(values).data.cast("B"))
    return out


def _write_unpacked(path: Path, model: LanguageModel) -> None:
    """Best effort, written aside and renamed into place: a reader never sees half a file."""
    ptc, pc, classes, nextmove, row, output = model
    staged = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with staged.open("wb") as handle:
            np.savez(
                handle,
                ptc=ptc,
                pc=pc,
                classes=np.asarray(classes),
                nextmove=np.frombuffer(nextmove, dtype=nextmove.typecode),
                row=np.frombuffer(row, dtype=row.typecode),
                output=np.asarray(output, dtype=np.int64),
            )
        staged.replace(path)
        for older in path.parent.glob("model-*.npz"):
            if older != path:  # unpacked from a package version no longer installed
                older.unlink(missing_ok=True)
    except OSError as error:
        log.info("language model not kept unpacked at %s (%s)", path, error)
        with contextlib.suppress(OSError):
            staged.unlink(missing_ok=True)


def identify_language(text: str) -> TextLanguage:
    """ISO 639-1 code of ``text``'s language with its probability; ``language`` None when the
    text is too short or the model unsure."""
    stripped = text.strip()
    if len(stripped) < MIN_CHARACTERS:
        return TextLanguage(language=None, probability=0.0)
    half = _SAMPLE_CHARACTERS // 2
    middle = len(stripped) // 2
    sample = (
        stripped if len(stripped) <= _SAMPLE_CHARACTERS else stripped[:half] + " " + stripped[middle : middle + half]
    )
    code, probability = _identifier().classify(sample)
    probability = float(probability)
    return TextLanguage(language=str(code) if probability >= MIN_PROBABILITY else None, probability=probability)


def guess_language(text: str) -> str | None:
    """The most likely language of a short text such as a search question, however unsure
    (``identify_language`` says "unknown" instead): what decides which encoders answer it, where a
    wrong guess costs a little ranking, not a wrong label on a moment."""
    stripped = text.strip()
    if not stripped:
        return None
    code, _probability = _identifier().classify(stripped)
    return str(code)
