"""Audio for speech recognition: decode, detect speech, plan chunks, write chunk artifacts.

Any audio or video file's first audio stream is decoded with PyAV (it bundles FFmpeg) into
16 kHz mono float32, the input Whisper and Silero VAD expect, in blocks of a few seconds: an
hour of audio never sits in memory (16 kHz float32 is 230 MB an hour) unless a caller opts in
with :func:`~medialens.media.audio.decode.load_audio`.

One module per concern, each imported on its own (this package re-exports nothing); none loads
PyAV or faster-whisper before a function needs it:

- :mod:`~medialens.media.audio.samples`: what they all share: ``SAMPLE_RATE``, ``FloatAudio``,
  and the error for input that cannot be used
- :mod:`~medialens.media.audio.decode`: probing and decoding a file's first audio stream
  (``AudioReader``, ``iter_audio``, ``load_audio``)
- :mod:`~medialens.media.audio.wav`: 16 kHz mono 16-bit PCM WAV artifacts (``WavWriter``, ``read_wav``)
- :mod:`~medialens.media.audio.vad`: voice activity with Silero VAD (``StreamingVad``, ``detect_speech``)
- :mod:`~medialens.media.audio.chunking`: cutting the timeline into chunks and writing their WAVs
  (``plan_chunks``, ``write_chunks``)
- :mod:`~medialens.media.audio.prepare`: the one decoding pass the pipeline step runs
  (``prepare_speech_audio``)

The speech path, as the steps run it::

    prepared = prepare_speech_audio(source, work_dir)     # one decoding pass (prepare)
    # work_dir/audio.wav: the whole track, 16 kHz mono PCM s16 (115 MB an hour)
    # work_dir/chunk-0000.wav ...: one per prepared.chunks[i] (AudioChunk.file)
    # Map over prepared.chunks: read_wav(chunk file) -> SpeechRecognizer.transcribe(...)

Chunks are cut in silences the voice-activity detector found, close to a target length; where a
stretch of speech is longer than a chunk may be, the cut goes through speech and the two chunks
overlap around it, so :func:`medialens.media.transcript.stitch` can find the words both heard.
"""
