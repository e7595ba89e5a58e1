"""The top layer: the ``keypointgan`` commands.

- :mod:`.cli`: the argument parser and the dispatch of every command;
- :mod:`.evaluate`: ``keypointgan evaluate`` (score a run, next to baselines; metrics.json);
- :mod:`.demo`: ``keypointgan demo``, the main job (train, evaluate, HTML report in one budget);
- :mod:`.supervised`: ``keypointgan supervised`` (the fully supervised baseline);
- :mod:`.bench`: ``keypointgan bench`` (this machine's speed);
- :mod:`.examples`: ``keypointgan examples`` (list and prepare the real-video examples).

Commands use the library (``train``, ``eval``, ``infer``, ``data``, ...) and the bottom
layer (``core``, ``config``, ``errors``); nothing below imports them
(docs/architecture.md, tests/test_layers.py).
"""
