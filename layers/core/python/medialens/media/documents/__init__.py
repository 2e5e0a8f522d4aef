"""Documents: text extraction (PDF, HTML, Markdown, plain text) and chunking into passages."""
