"""The serving side of the model library, torch-free: the request/backend contract
(:mod:`glide_model.serving.contract`) and the eligibility rule shared by serving and offline
evaluation (:mod:`glide_model.serving.rules`)."""
