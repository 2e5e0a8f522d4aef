"""The model store (``medialens.ml.store.store``)."""
