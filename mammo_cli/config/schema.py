"""The configuration schema: dataclasses registered with Hydra's ConfigStore.

Every YAML file under ``conf/`` is merged onto one of these dataclasses, so a typo
(``trainer.epoch=3``), an unknown option or a wrong type (``trainer.epochs=ten``) is
refused while the config is composed, before any TensorFlow work starts.

Importing this module is cheap (no TensorFlow): the CLI imports it at start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


@dataclass
class TaskConfig:
    """Which classification the labels are turned into (SPEC 1.2)."""

    name: str = MISSING
    #: class name -> course labels (0..4) that map to it, in class-index order.
    classes: dict[str, list[int]] = MISSING
    #: index of the positive class for binary F1/recall; null for multi-class tasks.
    positive_class: int | None = None
    #: feed (abnormality, baseline) pairs instead of single patches (siamese).
    pairs: bool = False


@dataclass
class ScratchModelConfig:
    """The study's CNNs trained from scratch (figures 2 and 10)."""

    _target_: str = "mammo_cli.models.scratch.build_scratch"
    hidden_units: int = 64
    dropout: float = 0.0
    #: a second Conv128 after the fifth convolution (``scratch_deep``, figure 10).
    extra_conv: bool = False
    output_activation: str = "softmax"


@dataclass
class PretrainedModelConfig:
    """An ImageNet backbone (Keras application without top) with the study's head."""

    _target_: str = "mammo_cli.models.pretrained.build_pretrained"
    #: vgg16 | vgg19 | resnet50 | densenet121 | efficientnetv2b0 | convnext_tiny
    backbone: str = "vgg16"
    #: fe (feature extraction: the whole base frozen) | ft (fine tuning from unfreeze_from)
    mode: str = "fe"
    #: first unfrozen stage in ft mode: block1..block5 (VGG), conv1..conv5 (ResNet50),
    #: conv1, conv2, pool2, conv3, pool3, conv4, pool4, conv5 (DenseNet121), stem,
    #: block1..block6, top (EfficientNetV2B0), stage_0..stage_3 (ConvNeXtTiny).
    unfreeze_from: str = "block5"
    #: imagenet (Keras download/cache) | null (random) | path to a backbone weights file.
    weights: str | None = "imagenet"
    hidden_units: int = 256
    dropout: float = 0.0
    output_activation: str = "softmax"
    #: feature map -> vector: flatten (layer ``flatten``) | avg (global average, ``pool``).
    pooling: str = "flatten"


@dataclass
class SiameseModelConfig(PretrainedModelConfig):
    """The Siamese network on (abnormality, baseline) pairs (SPEC 2, study figure 28): the
    same keys as a pretrained model, for its shared tower; ``hidden_units`` is the size of
    the embeddings whose difference is classified."""

    _target_: str = "mammo_cli.models.siamese.build_siamese"


@dataclass
class AugmentationConfig:
    """Training augmentation: on the fly per batch, or offline copies (training split only)."""

    name: str = "none"
    #: random rotation range in degrees (0 disables).
    rotation_degrees: float = 0.0
    #: rotate by a random multiple of 90 degrees.
    rotate_90: bool = False
    width_shift: float = 0.0
    height_shift: float = 0.0
    zoom: float = 0.0
    #: maximum shear angle in degrees, as ImageDataGenerator's ``shear_range``.
    shear_degrees: float = 0.0
    horizontal_flip: bool = False
    #: how pixels outside the image are filled: nearest | reflect | constant | wrap.
    fill_mode: str = "nearest"
    #: > 0: expand the training split once to the originals plus this many augmented
    #: copies of each (``offline_x3``: 2) instead of augmenting batches on the fly.
    offline_copies: int = 0


@dataclass
class ClassWeightsConfig:
    """How training samples are weighted per class."""

    #: none | balanced | manual
    kind: str = "none"
    #: one weight per class, used when ``kind`` is ``manual``.
    weights: list[float] | None = None


@dataclass
class OptimizerConfig:
    """A Keras optimizer built with ``hydra.utils.instantiate``."""

    _target_: str = "keras.optimizers.Adam"
    learning_rate: float = 1e-3


@dataclass
class DataConfig:
    """Where the course-format tensors are read from."""

    #: folder with train_tensor.npy, train_labels.npy, public_test_*.npy; null = demo set.
    dir: str | None = None
    #: where the demo set is generated on first use; null = $MAMMO_CACHE or ~/.cache/mammo.
    cache_dir: str | None = None
    #: check the baseline (even index) / abnormality (odd index) pairing of the labels;
    #: set false for home-made data without baseline patches.
    require_pairs: bool = True
    #: group the validation split by patient when the folder has train_groups.npy
    #: (written by ``mammo prepare``), so no patient is in both training and validation.
    patient_groups: bool = True


@dataclass
class TrainerConfig:
    """The shared fit routine's knobs."""

    epochs: int = 100
    batch_size: int = 50
    #: early stopping patience on validation loss (best weights are restored).
    patience: int = 50
    #: fraction of the training set held out for validation (stratified, seeded).
    val_split: float = 0.15
    #: rich progress bars during fit (off in tests and batch jobs if wanted).
    progress: bool = True
    #: TensorFlow intra-/inter-op thread counts per job; null = TensorFlow's default
    #: (every core). conf/trainer/default.yaml reads $MAMMO_TF_THREADS, which the
    #: local_parallel and slurm launchers set so that parallel jobs share the CPU.
    threads: int | None = None
    #: auto | float32 | mixed_bfloat16 (CPU) | mixed_float16 (GPU); the output layer stays
    #: float32. auto: mixed_bfloat16 on CPUs with native bfloat16 (AMX, AVX-512 BF16) when
    #: no GPU is present, float32 otherwise; metrics.json records the policy used.
    precision: str = "auto"


@dataclass
class LoggerConfig:
    """Experiment tracking during training (conf/logger/): what each epoch is logged to."""

    #: tensorboard | csv | mlflow | none
    name: str = "none"
    #: mlflow: tracking store; null = sqlite:///mlruns/mlflow.db under the working directory.
    tracking_uri: str | None = None
    #: mlflow: experiment the runs are logged to.
    experiment_name: str = "mammo"


@dataclass
class TrainConfig:
    """``mammo train``: one training run evaluated on the test set."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: Any = MISSING
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    class_weights: ClassWeightsConfig = field(default_factory=ClassWeightsConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 42
    #: ``mammo train`` / ``mammo holdout`` only: the folder of an interrupted run to
    #: continue, with the config it saved (no other overrides); it writes into that folder.
    resume: str | None = None


@dataclass
class EvaluateSettings:
    """Extra outputs of ``mammo evaluate`` for binary tasks."""

    #: the positive-class sensitivity to pick a threshold for; metrics.json then records
    #: ``operating_point`` (threshold, sensitivity, specificity). null = not computed.
    target_sensitivity: float | None = None


@dataclass
class EvaluateConfig:
    """``mammo evaluate``: re-evaluate a saved run on a test set."""

    #: the run folder written by ``mammo train`` (holds config.yaml and model.keras).
    run: str = MISSING
    #: data to evaluate on; ``data.dir`` unset means the data the run was trained on.
    data: DataConfig = field(default_factory=DataConfig)
    batch_size: int = 64
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)


@dataclass
class PredictSettings:
    """How ``mammo predict`` turns probabilities into classes and reports progress."""

    #: binary tasks: the positive class is predicted when its probability >= threshold.
    threshold: float = 0.5
    #: a rich progress bar over the batches.
    progress: bool = True


@dataclass
class PredictConfig:
    """``mammo predict``: classify new patches with a saved run (or ensemble)."""

    #: the run or ensemble folder (holds config.yaml and model.keras / ensemble.keras).
    run: str = MISSING
    #: a course tensor .npy, a PNG/TIFF/DICOM file, or a folder of such files.
    input: str = MISSING
    #: [x0, y0, x1, y1]: the box cut from each image/DICOM (e.g. a full mammogram).
    roi: list[int] | None = None
    batch_size: int = 64
    predict: PredictSettings = field(default_factory=PredictSettings)


@dataclass
class ExplainConfig:
    """``mammo explain``: Grad-CAM heatmaps of a saved run's predictions."""

    #: the run folder (scratch, pretrained or siamese model; ensembles are refused).
    run: str = MISSING
    #: as for ``mammo predict``; null = the run's test set (contact sheet of n patches).
    input: str | None = None
    #: [x0, y0, x1, y1]: the box cut from each image/DICOM.
    roi: list[int] | None = None
    #: test set: the n most confident predictions shown (half wrong ones, if there are).
    n: int = 16
    batch_size: int = 32
    #: a rich progress bar over the batches.
    progress: bool = True


@dataclass
class HoldoutSettings:
    """The holdout repetitions (study tables 2-4)."""

    #: number of trainings, each on its own seeded stratified train/validation split.
    k: int = 4


@dataclass
class HoldoutConfig(TrainConfig):
    """``mammo holdout``: k trainings of one config on k train/validation splits."""

    holdout: HoldoutSettings = field(default_factory=HoldoutSettings)


@dataclass
class EnsembleSettings:
    """How the members' class probabilities are combined (study section 8)."""

    #: one non-negative weight per member, normalised to sum 1; null = equal weights.
    weights: list[float] | None = None


@dataclass
class EnsembleConfig:
    """``mammo ensemble``: average saved runs of one task, evaluate members and ensemble."""

    #: the member run folders written by ``mammo train`` (at least two, one task).
    members: list[str] = MISSING
    ensemble: EnsembleSettings = field(default_factory=EnsembleSettings)
    #: test data; ``data.dir`` unset means the data the members were trained on.
    data: DataConfig = field(default_factory=DataConfig)
    batch_size: int = 64
    #: filled in by ``mammo ensemble`` from the members (their common task) and saved in
    #: the run folder's config.yaml, so ``mammo evaluate`` can re-evaluate the ensemble.
    task: TaskConfig | None = None


@dataclass
class PrepareOptions:
    """How ``mammo prepare`` cuts patches (defaults: the course's protocol, SPEC 1.5)."""

    #: side of the square output patches (the course format and mammo train need 150).
    patch_size: int = 150
    #: nearest (the course's) | bilinear
    resize: str = "nearest"
    #: a pixel is breast tissue above this fraction of the image's full scale.
    breast_level: float = 0.05
    #: a baseline patch needs at least this fraction of breast pixels.
    breast_fraction: float = 0.9
    #: a patient in both the train and test CSVs: drop_train | move_to_test | error
    patient_overlap: str = "drop_train"
    #: parallel worker processes (one full image at a time each).
    workers: int = 1
    #: a rich progress bar over the full images.
    progress: bool = True


@dataclass
class PrepareConfig:
    """``mammo prepare``: build the course tensors from a CBIS-DDSM download."""

    #: folder holding the downloaded DICOM tree (any layout; files are found by UID).
    source: str = MISSING
    #: folder holding the four *_case_description_*_set.csv files.
    csv_dir: str = MISSING
    #: output folder (course-format .npy files, manifest.csv, summary.json).
    out: str = MISSING
    prepare: PrepareOptions = field(default_factory=PrepareOptions)


def cpus_per_job(n_jobs: int) -> int:
    """CPU cores each of ``n_jobs`` parallel jobs may use (joblib's n_jobs: -1 = all cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    jobs = cores + 1 + n_jobs if n_jobs < 0 else n_jobs
    return max(1, cores // max(1, jobs))


# Registered on import, not in register_configs(): launcher configs interpolate it in
# hydra.job.env_set, which Hydra resolves inside worker processes (joblib, submitit)
# that import this module but never run the CLI's start-up.
OmegaConf.register_new_resolver("mammo.cpus_per_job", cpus_per_job, replace=True)


@dataclass
class DescribeConfig(TrainConfig):
    """``mammo data describe``: the train config's data/task/split keys, plus the sheet size."""

    #: abnormality/baseline pairs shown per class in samples.png
    samples_per_class: int = 4


def register_configs() -> None:
    """Register the schemas so that ``conf/*.yaml`` files can extend them."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="describe_schema", node=DescribeConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="predict_schema", node=PredictConfig)
    cs.store(name="explain_schema", node=ExplainConfig)
    cs.store(name="holdout_schema", node=HoldoutConfig)
    cs.store(name="prepare_schema", node=PrepareConfig)
    cs.store(name="ensemble_schema", node=EnsembleConfig)
    cs.store(group="schema/model", name="scratch", node=ScratchModelConfig)
    cs.store(group="schema/model", name="pretrained", node=PretrainedModelConfig)
    cs.store(group="schema/model", name="siamese", node=SiameseModelConfig)
