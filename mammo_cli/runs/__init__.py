"""Runs: the run folder (:mod:`.folder`, TensorFlow-free), and what the commands do with
models: train and evaluate (:mod:`.pipeline`), predict (:mod:`.predict`), score
(:mod:`.scoring`), holdouts (:mod:`.holdout`) and ensembles (:mod:`.ensemble`)."""

import logging

#: status lines of a long command as it goes ("holdout split 2/4 ..."), at INFO: the CLI
#: prints them on stdout (conf/hydra/mammo.yaml), the Python API only when verbose
progress_log = logging.getLogger("mammo_cli.progress")
