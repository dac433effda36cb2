"""Predicting and explaining new patches with a saved run: inputs (:mod:`.inputs`:
files and tensors to patches), ``predictions.csv`` (:mod:`.predictions`) and Grad-CAM
(:mod:`.explain`)."""
