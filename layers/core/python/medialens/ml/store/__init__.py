"""The model store: built models by name, version and quantization, checked by sha256.

``manifest`` (what a model folder holds), ``store`` (``ModelStore``: resolve, build, pull,
publish, list), ``catalog`` (the models buildable from packaged weights), ``ct2`` (CTranslate2's
``model.bin`` header) and ``importing`` (model folders a user supplies). Import each name from the
submodule that defines it; this package re-exports nothing.
"""
