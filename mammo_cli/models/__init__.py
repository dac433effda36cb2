"""Models: Keras builders (:mod:`.registry` builds one from its config; :mod:`.layers`
registers the custom layers saved models need) and the scikit-learn baseline
(:mod:`.baseline`). Importing the package itself imports no TensorFlow."""
