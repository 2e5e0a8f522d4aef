"""One construct per concern: storage, registry, queues, workflow, functions, workers, search,
api, observability."""
