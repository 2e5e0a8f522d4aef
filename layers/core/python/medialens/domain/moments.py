"""Passages (extracted text before embedding) and moments (what the index holds)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from medialens.domain.assets import MediaType


class Modality(StrEnum):
    DOCUMENT = "document"
    SPEECH = "speech"
    SCREEN_TEXT = "screen_text"
    IMAGE_TEXT = "image_text"
    SUBTITLE = "subtitle"
    VISUAL = "visual"  # what an image or a shot shows (classifier labels)
    AUDIO_EVENT = "audio_event"  # music or singing in a sound track


class Passage(BaseModel):
    """A chunk of an asset's text with where it sits: page for documents, seconds for media."""

    index: int = Field(ge=0)
    text: str
    modality: Modality = Modality.DOCUMENT
    page: int | None = Field(default=None, ge=1)
    section: str | None = None
    start: float | None = Field(default=None, ge=0)
    end: float | None = Field(default=None, ge=0)
    confidence: float | None = None
    model_versions: dict[str, str] = Field(
        default_factory=dict, description="Models that produced the text (ASR, VAD, OCR), by role."
    )
    # Where the moment plays when that is another object than the asset: a subtitle file's cues
    # play in the video beside it (its s3:// URI and media type).
    plays_in: str | None = None
    plays_as: MediaType | None = None
    # Where the passage is said in the document's narration (when the upload asked for one).
    narration_uri: str | None = None
    narration_start: float | None = Field(default=None, ge=0)
    narration_end: float | None = Field(default=None, ge=0)
    language: str | None = Field(default=None, description="ISO 639-1 code of what was said or written.")
    image_vector: list[float] | None = Field(
        default=None,
        description="A VISUAL passage's picture in an image-text model's space (CLIP-style), when one is set.",
    )

    @property
    def locator(self) -> str:
        """Where the passage sits, stable across re-runs of the same step."""
        if self.start is not None:
            return f"t{self.start:.3f}-{self.end if self.end is not None else self.start:.3f}#{self.index}"
        return f"p{self.page or 0}#{self.index}"


class VectorField(StrEnum):
    """The vectors a moment can carry, each in its own model's space."""

    TEXT = "vector"  # the multilingual text encoder: every moment
    ENGLISH = "english_vector"  # the English-trained text encoder: moments in English or of unknown language
    IMAGE = "image_vector"  # an image-text model's image encoder: VISUAL moments, asked with its text encoder

    @property
    def model_field(self) -> str:
        """The field that names the vector space of this one (``vector_space`` of its model)."""
        return {"vector": "embedding_model", "english_vector": "english_model", "image_vector": "image_model"}[
            self.value
        ]


def vector_space(model_version: str | None) -> str | None:
    """The space a text vector lives in: the embedding model's name@version without its
    quantization ("multilingual-e5-small@1+int8" -> "multilingual-e5-small@1"), since the int8 and
    fp32 builds of one model answer each other's vectors and two models never do."""
    return model_version.split("+", 1)[0] if model_version else None


class Moment(BaseModel):
    """One index document: a findable span of an asset."""

    moment_id: str
    asset_id: str
    source: str = Field(description="s3:// URI of the source object.")
    media_type: MediaType
    modality: Modality
    text: str
    start: float | None = None
    end: float | None = None
    page: int | None = None
    section: str | None = None
    vector: list[float] | None = Field(default=None, description="The multilingual text embedding.")
    english_vector: list[float] | None = Field(
        default=None, description="The English-trained embedding, for moments in English or of unknown language."
    )
    confidence: float | None = None
    model_versions: dict[str, str] = Field(default_factory=dict)
    pipeline_version: str
    narration_uri: str | None = Field(default=None, description="s3:// URI of the document's narration audio.")
    narration_start: float | None = Field(default=None, description="Seconds into the narration where this is said.")
    narration_end: float | None = None
    language: str | None = Field(default=None, description="ISO 639-1 code of what was said or written, when known.")
    image_vector: list[float] | None = Field(
        default=None, description="The picture's embedding (VISUAL moments, when an image-text model is set)."
    )

    @property
    def embedding_model(self) -> str | None:
        """The vector space of ``vector`` (``vector_space`` of the text embedding model)."""
        return vector_space(self.model_versions.get("text_embedding"))

    @property
    def english_model(self) -> str | None:
        """The vector space of ``english_vector``."""
        return vector_space(self.model_versions.get("english_embedding")) if self.english_vector else None

    @property
    def image_model(self) -> str | None:
        """The vector space of ``image_vector``."""
        return vector_space(self.model_versions.get("image_embedding")) if self.image_vector else None
