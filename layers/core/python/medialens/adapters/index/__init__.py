"""The moment index: one interface, an embedded LanceDB backend and an OpenSearch backend."""
