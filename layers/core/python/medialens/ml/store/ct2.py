"""CTranslate2 ``model.bin`` files (Whisper): the header and variable table, read without the weights."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from medialens.errors import ConfigurationError

_CT2_DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}


def ct2_weights_summary(model_bin: Path) -> dict[str, Any]:
    """Reads a CTranslate2 ``model.bin``'s variable table (seeking past the data).

    A joined or copied file that is short, padded or garbled fails here rather than in the
    runtime; the dtype of the bulk of the bytes says what quantization the weights ship in.
    """
    size = model_bin.stat().st_size
    bytes_by_dtype: dict[str, int] = {}
    with model_bin.open("rb") as handle:

        def unpack(fmt: str) -> tuple[Any, ...]:
            raw = handle.read(struct.calcsize(fmt))
            if len(raw) != struct.calcsize(fmt):
                raise ConfigurationError(f"{model_bin} ends inside its header: not a complete CTranslate2 model")
            return struct.unpack(fmt, raw)

        def string() -> str:
            (length,) = unpack("<H")
            return handle.read(length).decode("utf-8", errors="replace").rstrip("\0")

        (binary_version,) = unpack("<I")
        spec = string()
        (revision,) = unpack("<I")
        (count,) = unpack("<I")
        for _ in range(count):
            string()
            (rank,) = unpack("<B")
            unpack(f"<{rank}I")
            (dtype,) = unpack("<B")
            (nbytes,) = unpack("<I")
            handle.seek(nbytes, 1)
            name = _CT2_DTYPES.get(dtype, f"dtype{dtype}")
            bytes_by_dtype[name] = bytes_by_dtype.get(name, 0) + nbytes
            if handle.tell() > size:
                raise ConfigurationError(f"{model_bin} is shorter than its variable table says (truncated?)")
    return {
        "binary_version": binary_version,
        "spec": spec,
        "spec_revision": revision,
        "variables": count,
        "weights_dtype": max(bytes_by_dtype, key=lambda k: bytes_by_dtype[k]) if bytes_by_dtype else None,
    }
