"""Media analysis building blocks: audio extraction, speech chunks, transcripts (and, beside
them, video and image modules). Each module is imported on its own, so a Lambda that only
stitches transcripts never loads a decoder."""
