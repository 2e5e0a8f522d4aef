"""Model runtimes (one lifecycle base class, lazy loading, one process-wide cache), onnxruntime
set-up, and the model store."""
