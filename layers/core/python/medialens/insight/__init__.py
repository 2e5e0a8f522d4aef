"""Operations insight: throughput, latency, model quality, drift and cost per item, read from the
assets the registry holds (their stage timings and quality summaries) and from sampled metrics;
``report`` assembles them, ``charts`` and ``html`` draw them."""
