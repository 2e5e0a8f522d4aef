"""Model runtimes (one base class per model kind, lazy loading) and the model store."""
