"""The bottom layer: plumbing every part of the package shares.

- :mod:`.runtime`: device, precision, threads and memory format of a run;
- :mod:`.checkpoint`: safetensors + JSON checkpoints, written atomically;
- :mod:`.runs`: finding a run's checkpoint and its stored config from a folder;
- :mod:`.logger`: the scalars log (``scalars.jsonl`` / ``.csv``, TensorBoard) and its reader;
- :mod:`.seeds`: the named random streams and the per-step seed;
- :mod:`.io`: atomic file writes.

Nothing here imports the library (``pose``, ``models``, ``data``, ``train``, ...) or the
commands; see docs/architecture.md and tests/test_layers.py.
"""
