"""medialens: turn a drop folder of media into a searchable index of moments."""

__version__ = "0.1.0"

# Bumped when a change to the analysis would give different artifacts or moments; it names
# executions (so a new pipeline re-analyses) and is stored on every moment.
PIPELINE_VERSION = "2"
