"""`glide simulate ab`: a simulated online A/B test of GLIDE through the real pipeline (issue 15 item 4).

config.py (what the experiment is) -> assign.py (who is in which arm) -> sources.py and ranker.py
(what each arm serves) -> pipeline.py (the stack: Kafka, stream processors, Feast, the GLIDE worker)
-> loop.py (the simulated days) -> stats.py (per-user outcomes, lifts, bootstrap CIs) -> report.py.
"""
