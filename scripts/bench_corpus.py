"""A mixed benchmark corpus made by the sample-media generators: short videos with speech and
burnt-in captions, recordings, images of text and documents, with what each says and where.

    .venv/bin/python scripts/bench_corpus.py --out .bench/corpus

The default mix mirrors a media team's folder (24 videos, 16 recordings, 32 images, 24
documents; about 11 minutes of media). Files and ``answers.json`` are a function of the seed:
a folder already made with the same mix and seed is reused, so a "before" and an "after" run
read the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

import bench_embeddings
from sample_audio import synthesise_speech
from sample_video import FPS, HEIGHT, WIDTH, font_path

SHOT_SOURCES = ("testsrc2", "smptebars", "color=c=0x1f3b73", "color=c=0x2e5e3a", "rgbtestsrc", "color=c=0x5a2d0c")
CAPTION_WORDS = (
    "HARBOUR",
    "CRANE",
    "FERRY",
    "MARKET",
    "WINTER",
    "SUMMIT",
    "ROBOT",
    "GARDEN",
    "BRIDGE",
    "STATION",
    "ORCHESTRA",
    "CLINIC",
    "LIBRARY",
    "STADIUM",
    "FACTORY",
    "VINEYARD",
    "MUSEUM",
    "AIRPORT",
    "GLACIER",
    "SATELLITE",
    "BAKERY",
    "TUNNEL",
    "LIGHTHOUSE",
    "CANAL",
)
RECORDING_FORMATS = (".mp3", ".m4a", ".wav", ".flac")
IMAGE_FORMATS = (".png", ".jpg", ".webp")
KINDS = ("pdf", "md", "html", "txt")


def _paragraphs(rng: random.Random, count: int) -> list[str]:
    sentences = bench_embeddings.make_sentences(count * 5, rng.randrange(1 << 30))
    return [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]


def write_documents(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` distinct documents, cycling PDF (3 pages), Markdown, HTML and plain text."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        paragraphs = _paragraphs(rng, 9)
        path = folder / f"doc-{n:04d}.{kind}"
        if kind == "pdf":
            pdf = FPDF()
            pdf.set_font("Helvetica", size=11)
            for page in range(3):
                pdf.add_page()
                for paragraph in paragraphs[page * 3 : page * 3 + 3]:
                    pdf.multi_cell(0, 6, paragraph)
                    pdf.ln(3)
            pdf.output(str(path))
        elif kind == "md":
            path.write_text("".join(f"## Section {i}\n\n{p}\n\n" for i, p in enumerate(paragraphs)), encoding="utf-8")
        elif kind == "html":
            body = "".join(f"<h2>Part {i}</h2><p>{p}</p>" for i, p in enumerate(paragraphs))
            path.write_text(f"<html><head><title>Doc {n}</title></head><body>{body}</body></html>", encoding="utf-8")
        else:
            path.write_text("\n\n".join(paragraphs), encoding="utf-8")
        paths.append(path)
    return paths


BACKGROUNDS = ("white", "#f4f1e8", "#fff6cc", "#e8f0ff")


@dataclass(frozen=True)
class Mix:
    videos: int = 24
    video_seconds: float = 12.0
    recordings: int = 16
    recording_seconds: float = 24.0
    images: int = 32
    documents: int = 24
    seed: int = 5

    @property
    def media_seconds(self) -> float:
        return self.videos * self.video_seconds + self.recordings * self.recording_seconds


@dataclass(frozen=True)
class Answer:
    """Something a file says or shows, and where: a question whose answer is known."""

    file: str  # relative to the corpus folder
    text: str
    start: float | None = None
    end: float | None = None


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def _caption(rng: random.Random) -> str:
    return " ".join(rng.sample(CAPTION_WORDS, 2))


def write_video(path: Path, seconds: float, seed: int) -> list[Answer]:
    """Three shots with a caption each, over a synthesised speech track."""
    rng = random.Random(seed)
    shot = seconds / 3
    parts, labels, chain, answers = [], [], "", []
    for number in range(3):
        source = rng.choice(SHOT_SOURCES)
        joiner = ":" if "=" in source else "="
        parts.append(f"{source}{joiner}s={WIDTH}x{HEIGHT}:r={FPS}:d={shot:g},format=yuv420p[v{number}]")
        labels.append(f"[v{number}]")
    chain = f"{''.join(labels)}concat=n=3:v=1:a=0"
    for number in range(3):
        text, start = _caption(rng), number * shot + 0.5
        chain += (
            f",drawtext=fontfile='{font_path()}':text='{text}':fontsize=40:fontcolor=white:box=1:"
            f"boxcolor=black@0.6:boxborderw=12:x=(w-text_w)/2:y={rng.choice((40, 160, 280))}:"
            f"enable='between(t,{start:g},{start + shot - 1:g})'"
        )
        answers.append(Answer(path.name, text, start, start + shot - 1))
    with tempfile.TemporaryDirectory(prefix="medialens-corpus-") as tmp:
        wav = Path(tmp) / "speech.wav"
        spoken = synthesise_speech(wav, seconds / 60, seed=seed)
        _ffmpeg(
            "-i", str(wav), "-filter_complex", ";".join(parts) + f";{chain}[v]",
            "-map", "[v]", "-map", "0:a", "-t", f"{seconds:g}",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-g", "50",
            "-c:a", "aac", "-b:a", "48k", "-ar", "22050", "-ac", "1", "-movflags", "+faststart", str(path),
        )  # fmt: skip
    return answers + [Answer(path.name, s.text, s.start, s.end) for s in spoken if s.end <= seconds]


def write_image(path: Path, seed: int) -> list[Answer]:
    rng = random.Random(seed)
    lines = [_caption(rng), f"{rng.choice(CAPTION_WORDS)} {rng.randrange(10, 9999)}"]
    image = Image.new("RGB", (rng.choice((640, 800, 1024)), 320), rng.choice(BACKGROUNDS))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(font_path(), 44)
    for number, line in enumerate(lines):
        draw.text((50, 60 + 100 * number), line, font=font, fill="black")
    image.save(path, quality=90)
    return [Answer(path.name, lines[0])]


def make_corpus(out: Path, mix: Mix) -> Path:
    """Writes the corpus (or finds it written) and returns its folder."""
    folder = out / f"mixed-v{mix.videos}r{mix.recordings}i{mix.images}d{mix.documents}-s{mix.seed}"
    answers_file = folder / "answers.json"
    if answers_file.exists():
        return folder
    answers: list[Answer] = []
    for kind in ("video", "audio", "images", "docs"):
        (folder / kind).mkdir(parents=True, exist_ok=True)
    for n in range(mix.videos):
        answers += [
            Answer(f"video/{a.file}", a.text, a.start, a.end)
            for a in write_video(folder / "video" / f"clip-{n:03d}.mp4", mix.video_seconds, mix.seed * 1000 + n)
        ]
    for n in range(mix.recordings):
        path = folder / "audio" / f"recording-{n:03d}{RECORDING_FORMATS[n % len(RECORDING_FORMATS)]}"
        spoken = synthesise_speech(path, mix.recording_seconds / 60, seed=mix.seed * 2000 + n)
        answers += [Answer(f"audio/{path.name}", s.text, s.start, s.end) for s in spoken]
    for n in range(mix.images):
        path = folder / "images" / f"picture-{n:03d}{IMAGE_FORMATS[n % len(IMAGE_FORMATS)]}"
        answers += [Answer(f"images/{a.file}", a.text) for a in write_image(path, mix.seed * 3000 + n)]
    for path in write_documents(folder / "docs", mix.documents, mix.seed):
        text = path.read_text(encoding="utf-8", errors="ignore") if path.suffix != ".pdf" else ""
        sentence = next((s for s in text.split(". ") if len(s.split()) >= 6 and "<" not in s and "#" not in s), None)
        if sentence:
            answers.append(Answer(f"docs/{path.name}", sentence.strip()))
    payload = {"mix": asdict(mix), "media_seconds": mix.media_seconds, "answers": [asdict(a) for a in answers]}
    answers_file.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(".bench/corpus"))
    parser.add_argument("--seed", type=int, default=Mix.seed)
    args = parser.parse_args()
    print(make_corpus(args.out, Mix(seed=args.seed)))


if __name__ == "__main__":
    main()
