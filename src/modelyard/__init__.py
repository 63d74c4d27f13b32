"""modelyard: a local LLM model manager and OpenAI-compatible gateway."""

__version__ = "0.1.0"
