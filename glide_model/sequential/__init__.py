"""Sequential recommendation on interaction datasets: the offline harness that puts GLIDE next to
strong non-LLM baselines trained in the same run (issue 17).

``dataset`` / ``sid_table`` read a dataset folder and a given SID table, ``split`` is leave-one-out,
``metrics`` and ``ranking`` define full-ranking scoring under both protocols, ``popularity``,
``itemknn``, ``sasrec`` and ``tiger*`` are the baselines (``baselines`` adapts them to the harness),
``systems`` is the registry later systems join, ``harness`` runs them all, ``report`` shows a run.
"""
