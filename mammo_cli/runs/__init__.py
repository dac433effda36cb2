"""Runs: the run folder (:mod:`.folder`, TensorFlow-free), and what the commands do with
models: train and evaluate (:mod:`.pipeline`), predict (:mod:`.predict`), score
(:mod:`.scoring`), holdouts (:mod:`.holdout`) and ensembles (:mod:`.ensemble`)."""
