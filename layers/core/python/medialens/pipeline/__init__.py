"""Step logic: plain functions over pydantic models, called by the light Lambda handler, the
heavy worker and (through them) the local runtime."""
