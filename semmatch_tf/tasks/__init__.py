"""The two tasks a search team trains and uses: :class:`CrossEncoder` and :class:`BiEncoder`.

As keras-hub's Task and sentence-transformers' ``CrossEncoder`` / ``SentenceTransformer``, each
object owns the whole life of its model: ``fit`` (train a config into a run directory, resuming a
killed run), ``save`` (a self-contained directory) and ``from_preset`` (a saved directory, a run,
or for ``BiEncoder`` a packaged pretrained checkpoint; ``load`` reads directories only),
``predict`` / ``rank`` or ``encode``, ``evaluate`` and ``export`` (a versioned SavedModel for TF
Serving). Texts go in as plain strings: tokenisation is inside the model's graph. The functions
underneath (``training.trainer.train``, ``runs.load_run``, ``export.export_model``...) stay
available for finer control. Each class lives in its own module
(:mod:`semmatch_tf.tasks.cross_encoder`, :mod:`semmatch_tf.tasks.bi_encoder`, sharing
:mod:`semmatch_tf.tasks.presets`); both are imported here.

Examples:

>>> from semmatch_tf import CrossEncoder, load_config
>>> config = load_config("configs/lcqmc_bilstm.yaml")            # doctest: +SKIP
>>> model = CrossEncoder.fit(config, "runs/lcqmc")                 # doctest: +SKIP
>>> model.rank("红色 连衣裙", ["红色长裙", "蓝色牛仔裤"])          # doctest: +SKIP
[{'corpus_id': 0, 'score': 2.71, 'text': '红色长裙'}, {'corpus_id': 1, 'score': 1.12, 'text': '蓝色牛仔裤'}]
>>> model.save("models/lcqmc-bilstm")                              # doctest: +SKIP
PosixPath('models/lcqmc-bilstm')
>>> CrossEncoder.from_preset("tests/fixtures/runs/bilstm_v0_1").head
'classification'
"""

from __future__ import annotations

from semmatch_tf.tasks.bi_encoder import BiEncoder
from semmatch_tf.tasks.cross_encoder import CrossEncoder

__all__ = ["BiEncoder", "CrossEncoder"]
