"""Model builders: the study's CNNs (:mod:`.scratch`), ImageNet backbones with the
study's head (:mod:`.pretrained`, :mod:`.backbones`), the Siamese network (:mod:`.siamese`),
averaging ensembles (:mod:`.ensemble`), and the scikit-learn baseline (:mod:`.baseline`,
TensorFlow-free). :mod:`.registry` builds a model from its config.

Saved models contain Keras built-in layers only: they load with
``keras.models.load_model(path, safe_mode=True)`` without importing mammo.
"""
