"""The configuration schema: typed dataclasses registered with Hydra's ConfigStore.

Every YAML file under ``conf/`` is merged onto one of these dataclasses, so a typo
(``trainer.epoch=3``), an unknown option (``model.output_activation=relu``) or a wrong
type (``trainer.epochs=ten``) is refused while the config is composed. Numeric keys
declare their range with :func:`number`; :mod:`mammo_cli.config.validate` checks them,
with the rules that join several keys, before any data is read or TensorFlow imported.

Importing this module is cheap (no TensorFlow): the CLI imports it at start-up. It is
long because it is one thing, every command's schema in one place, so that a key is
defined once and shared (``DataConfig``, ``TrainerConfig``, ...) by the commands using it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


def number(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A numeric field with its allowed range (``ge``/``gt`` lower, ``le``/``lt`` upper).

    Every float is also required to be finite. ``default`` may be None for optional keys.
    """
    bounds = {"ge": ge, "gt": gt, "le": le, "lt": lt}
    return field(default=default, metadata={k: v for k, v in bounds.items() if v is not None})


class Choice(str, Enum):
    """A fixed set of option names; members compare and print as their plain names."""

    def __str__(self) -> str:
        return self.value


class OutputActivation(Choice):
    softmax = "softmax"
    sigmoid = "sigmoid"


class Backbone(Choice):
    vgg16 = "vgg16"
    vgg19 = "vgg19"
    resnet50 = "resnet50"
    densenet121 = "densenet121"
    efficientnetv2b0 = "efficientnetv2b0"
    convnext_tiny = "convnext_tiny"


#: each backbone's stages, in network order: the choices of ``model.unfreeze_from``
#: (``mammo_cli.models.backbones`` maps them to the layers where they start)
BACKBONE_STAGES: dict[str, tuple[str, ...]] = {
    "vgg16": ("block1", "block2", "block3", "block4", "block5"),
    "vgg19": ("block1", "block2", "block3", "block4", "block5"),
    "resnet50": ("conv1", "conv2", "conv3", "conv4", "conv5"),
    "densenet121": ("conv1", "conv2", "pool2", "conv3", "pool3", "conv4", "pool4", "conv5"),
    "efficientnetv2b0": ("stem", *(f"block{i}" for i in range(1, 7)), "top"),
    "convnext_tiny": ("stage_0", "stage_1", "stage_2", "stage_3"),
}


class Pooling(Choice):
    #: the study's head: every feature-map value feeds Dense(hidden_units)
    flatten = "flatten"
    #: global average pooling, one value per channel
    avg = "avg"


class Mode(Choice):
    #: feature extraction: the whole ImageNet base frozen
    fe = "fe"
    #: fine tuning from ``unfreeze_from`` on
    ft = "ft"


class FillMode(Choice):
    nearest = "nearest"
    reflect = "reflect"
    constant = "constant"
    wrap = "wrap"


class ClassWeighting(Choice):
    none = "none"
    balanced = "balanced"
    manual = "manual"


class Precision(Choice):
    auto = "auto"
    float32 = "float32"
    mixed_bfloat16 = "mixed_bfloat16"
    mixed_float16 = "mixed_float16"


class LoggerName(Choice):
    tensorboard = "tensorboard"
    csv = "csv"
    mlflow = "mlflow"
    none = "none"


class IntervalMethod(Choice):
    percentile = "percentile"
    bca = "bca"


class ComparedMetric(Choice):
    accuracy = "accuracy"
    auc = "auc"
    f1 = "f1"
    f1_macro = "f1_macro"
    brier = "brier"


class BaselineModel(Choice):
    #: standardised features -> logistic regression
    logistic = "logistic"
    #: standardised features -> random forest
    random_forest = "random_forest"
    #: no baseline (``mammo baseline`` refuses it)
    none = "none"


class Resize(Choice):
    nearest = "nearest"
    bilinear = "bilinear"


class PatientOverlap(Choice):
    drop_train = "drop_train"
    move_to_test = "move_to_test"
    error = "error"


@dataclass
class TaskConfig:
    """Which classification the course labels are turned into (conf/task/)."""

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
    hidden_units: int = number(64, ge=1)
    dropout: float = number(0.0, ge=0.0, lt=1.0)
    #: a second Conv128 after the fifth convolution (``scratch_deep``, figure 10).
    extra_conv: bool = False
    output_activation: OutputActivation = OutputActivation.softmax


@dataclass
class PretrainedModelConfig:
    """An ImageNet backbone (Keras application without top) with the study's head."""

    _target_: str = "mammo_cli.models.pretrained.build_pretrained"
    backbone: Backbone = Backbone.vgg16
    mode: Mode = Mode.fe
    #: first unfrozen stage in ft mode (BACKBONE_STAGES lists each backbone's).
    unfreeze_from: str = "block5"
    #: imagenet (Keras download/cache) | null (random) | path to a backbone weights file.
    weights: str | None = "imagenet"
    hidden_units: int = number(256, ge=1)
    dropout: float = number(0.0, ge=0.0, lt=1.0)
    output_activation: OutputActivation = OutputActivation.softmax
    #: feature map -> vector: flatten (layer ``flatten``) | avg (global average, ``pool``).
    pooling: Pooling = Pooling.flatten


@dataclass
class SiameseModelConfig(PretrainedModelConfig):
    """The Siamese network on (abnormality, baseline) pairs (study figure 28): the same
    keys as a pretrained model, for its shared tower; ``hidden_units`` is the size of the
    embeddings whose difference is classified."""

    _target_: str = "mammo_cli.models.siamese.build_siamese"


#: the model schemas by builder, to validate a composed ``model`` node
MODEL_SCHEMAS = {
    schema._target_: schema
    for schema in (ScratchModelConfig, PretrainedModelConfig, SiameseModelConfig)
}


@dataclass
class AugmentationConfig:
    """Training augmentation: on the fly per batch, or offline copies (training split only)."""

    name: str = "none"
    #: random rotation range in degrees (0 disables).
    rotation_degrees: float = number(0.0, ge=0.0, le=180.0)
    #: rotate by a random multiple of 90 degrees.
    rotate_90: bool = False
    #: random shifts as a fraction of the patch side (ImageDataGenerator's shift ranges).
    width_shift: float = number(0.0, ge=0.0, lt=1.0)
    height_shift: float = number(0.0, ge=0.0, lt=1.0)
    #: random zoom in [1 - zoom, 1 + zoom].
    zoom: float = number(0.0, ge=0.0, lt=1.0)
    #: maximum shear angle in degrees, as ImageDataGenerator's ``shear_range``.
    shear_degrees: float = number(0.0, ge=0.0, lt=90.0)
    horizontal_flip: bool = False
    #: how pixels outside the image are filled.
    fill_mode: FillMode = FillMode.nearest
    #: > 0: expand the training split once to the originals plus this many augmented
    #: copies of each (``offline_x3``: 2) instead of augmenting batches on the fly.
    offline_copies: int = number(0, ge=0, le=20)


@dataclass
class ClassWeightsConfig:
    """How training samples are weighted per class."""

    kind: ClassWeighting = ClassWeighting.none
    #: one positive weight per class, used when ``kind`` is ``manual``.
    weights: list[float] | None = None


@dataclass
class OptimizerConfig:
    """A Keras optimizer built with ``hydra.utils.instantiate``."""

    _target_: str = "keras.optimizers.Adam"
    learning_rate: float = number(1e-3, gt=0.0, le=1.0)


@dataclass
class DataConfig:
    """Where the course-format tensors are read from."""

    #: folder with train_tensor.npy, train_labels.npy, public_test_*.npy; null = demo set.
    dir: str | None = None
    #: mammo's cache (demo set, ...); null = $MAMMO_CACHE or ~/.cache/mammo.
    cache_dir: str | None = None
    #: check the baseline (even index) / abnormality (odd index) pairing of the labels;
    #: set false for home-made data without baseline patches.
    require_pairs: bool = True
    #: group the validation split by patient when the folder has train_groups.npy
    #: (written by ``mammo prepare``), so no patient is in both training and validation.
    patient_groups: bool = True
    #: keep the features of frozen backbones in <cache_dir>/features, shared by every run,
    #: holdout split and sweep job that needs the same ones.
    feature_cache: bool = True
    #: the feature cache's size bound in GB (least recently used entries go first).
    feature_cache_max_gb: float = number(5.0, gt=0.0)
    #: at most this many samples in each split of the task view (training, test), each
    #: class in proportion and at least once, the same ones every time; null = all.
    #: A quick look at a new config (``debug=fast``), not a result.
    limit: int | None = number(None, ge=1)


@dataclass
class TrainerConfig:
    """The shared fit routine's knobs."""

    epochs: int = number(100, ge=1)
    batch_size: int = number(50, ge=1)
    #: early stopping patience on validation loss (best weights are restored).
    patience: int = number(50, ge=0)
    #: fraction of the training set held out for validation (stratified, seeded).
    val_split: float = number(0.15, gt=0.0, lt=1.0)
    #: rich progress bars during fit (off in tests and batch jobs if wanted).
    progress: bool = True
    #: TensorFlow intra-/inter-op thread counts per job; null = TensorFlow's default
    #: (every core). conf/trainer/default.yaml reads $MAMMO_TF_THREADS, which the
    #: local_parallel and slurm launchers set so that parallel jobs share the CPU.
    threads: int | None = number(None, ge=1)
    #: auto: mixed_bfloat16 on CPUs with native bfloat16 (AMX, AVX-512 BF16) when no GPU
    #: is present, float32 otherwise; the output layer stays float32; metrics.json
    #: records the policy used.
    precision: Precision = Precision.auto


@dataclass
class LoggerConfig:
    """Experiment tracking during training (conf/logger/): what each epoch is logged to."""

    name: LoggerName = LoggerName.none
    #: mlflow: tracking store; null = sqlite:///mlruns/mlflow.db under the working directory.
    tracking_uri: str | None = None
    #: mlflow: experiment the runs are logged to.
    experiment_name: str = "mammo"


@dataclass
class BootstrapSettings:
    """Confidence intervals of the test metrics: a stratified bootstrap over test units
    (samples, pairs or patients), seeded from ``seed``."""

    #: bootstrap resamples; 0 turns intervals off.
    resamples: int = number(2000, ge=0)
    #: coverage of the intervals.
    level: float = number(0.95, gt=0.5, lt=1.0)
    #: bca (bias-corrected and accelerated; covers at its nominal rate on small test
    #: sets, see evaluation/statistics.py) | percentile.
    method: IntervalMethod = IntervalMethod.bca


@dataclass
class EvaluationSettings:
    """How a test set is scored (every command that scores one)."""

    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)
    #: binary tasks: the positive-class sensitivity to pick a threshold for; metrics.json
    #: then records ``operating_point`` (threshold, sensitivity, specificity).
    target_sensitivity: float | None = number(None, gt=0.0, le=1.0)
    #: warn when the test set's AUC interval is wider than this.
    max_ci_width: float = number(0.2, gt=0.0, le=1.0)


@dataclass
class BaselineSettings:
    """The scikit-learn baseline of a task (``mammo baseline``): patch features
    (:mod:`mammo_cli.models.baseline`), standardised, and this classifier; class weights
    as ``class_weights`` says, seeded from ``seed``."""

    model: BaselineModel = BaselineModel.logistic


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
    evaluate: EvaluationSettings = field(default_factory=EvaluationSettings)
    baseline: BaselineSettings = field(default_factory=BaselineSettings)
    seed: int = number(42, ge=0, lt=2**32)
    #: ``mammo train`` / ``mammo holdout`` only: the folder of an interrupted run to
    #: continue, with the config it saved (no other overrides); it writes into that folder.
    resume: str | None = None


@dataclass
class BaselineConfig(TrainConfig):
    """``mammo baseline``: the config of ``mammo train`` (same groups, same task presets),
    of which the baseline uses the task, data, class weights, ``trainer.val_split``,
    ``seed``, ``evaluate`` and ``baseline``; the model, augmentation, optimizer and the
    other trainer keys are ignored."""


@dataclass
class EvaluateConfig:
    """``mammo evaluate``: re-evaluate a saved run on a test set."""

    #: the run folder of a ``mammo train`` or ``mammo ensemble`` run.
    run: str = MISSING
    #: data to evaluate on; ``data.dir`` unset means the data the run was trained on.
    data: DataConfig = field(default_factory=DataConfig)
    batch_size: int = number(64, ge=1)
    evaluate: EvaluationSettings = field(default_factory=EvaluationSettings)
    #: filled in by ``mammo evaluate`` from the run (its task) and saved in the folder's
    #: config.yaml, so the scored folder says what it answers like any scored run.
    task: TaskConfig | None = None


@dataclass
class PredictSettings:
    """How ``mammo predict`` turns probabilities into classes and reports progress."""

    #: binary tasks: the positive class is predicted when its probability >= threshold.
    threshold: float = number(0.5, ge=0.0, le=1.0)
    #: a rich progress bar over the batches.
    progress: bool = True


@dataclass
class PredictConfig:
    """``mammo predict``: classify new patches with a saved run (or ensemble)."""

    #: the run folder of a ``mammo train`` or ``mammo ensemble`` run.
    run: str = MISSING
    #: a course tensor .npy, a PNG/TIFF/DICOM file, or a folder of such files.
    input: str = MISSING
    #: [x0, y0, x1, y1]: the box cut from each image/DICOM (e.g. a full mammogram).
    roi: list[int] | None = None
    batch_size: int = number(64, ge=1)
    predict: PredictSettings = field(default_factory=PredictSettings)


@dataclass
class ExplainConfig:
    """``mammo explain``: Grad-CAM heatmaps of a saved run's predictions."""

    #: the run folder of a ``mammo train`` run (one model; ensembles are refused).
    run: str = MISSING
    #: as for ``mammo predict``; null = the run's test set (contact sheet of n patches).
    input: str | None = None
    #: [x0, y0, x1, y1]: the box cut from each image/DICOM.
    roi: list[int] | None = None
    #: test set: the n most confident predictions shown (half wrong ones, if there are).
    n: int = number(16, ge=1)
    batch_size: int = number(32, ge=1)
    #: a rich progress bar over the batches.
    progress: bool = True


@dataclass
class HoldoutSettings:
    """The holdout repetitions (study tables 2-4)."""

    #: number of trainings, each on its own seeded stratified train/validation split.
    k: int = number(4, ge=2)


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
    batch_size: int = number(64, ge=1)
    evaluate: EvaluationSettings = field(default_factory=EvaluationSettings)
    #: filled in by ``mammo ensemble`` from the members (their common task) and saved in
    #: the run folder's config.yaml, where every command that takes ``run=`` reads it.
    task: TaskConfig | None = None
    #: the seed of the bootstrap intervals.
    seed: int = number(42, ge=0, lt=2**32)


@dataclass
class CompareSettings:
    """What ``mammo compare`` compares and how sure it must be."""

    metric: ComparedMetric = ComparedMetric.auc
    #: paired bootstrap resamples (0: DeLong/McNemar p-values only, no bootstrap).
    resamples: int = number(2000, ge=0)
    #: coverage of the interval of the difference; "distinguishable" means p < 1 - level.
    level: float = number(0.95, gt=0.5, lt=1.0)


@dataclass
class CompareConfig:
    """``mammo compare <run A> <run B>``: the paired difference B - A on the same test
    samples, from the runs' test_predictions.csv."""

    #: the first scored run folder (train, ensemble, baseline or evaluate).
    a: str = MISSING
    #: the second one.
    b: str = MISSING
    compare: CompareSettings = field(default_factory=CompareSettings)
    #: the seed of the paired bootstrap.
    seed: int = number(42, ge=0, lt=2**32)


@dataclass
class PrepareOptions:
    """How ``mammo prepare`` cuts patches (defaults: the course's protocol)."""

    #: side of the square output patches (the course format and mammo train need 150).
    patch_size: int = number(150, ge=8)
    resize: Resize = Resize.nearest
    #: a pixel is breast tissue above this fraction of the image's full scale.
    breast_level: float = number(0.05, ge=0.0, lt=1.0)
    #: a baseline patch needs at least this fraction of breast pixels.
    breast_fraction: float = number(0.9, ge=0.0, le=1.0)
    #: a patient in both the train and test CSVs.
    patient_overlap: PatientOverlap = PatientOverlap.drop_train
    #: parallel worker processes (one full image at a time each).
    workers: int = number(1, ge=1)
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


@dataclass
class DescribeConfig(TrainConfig):
    """``mammo data describe``: the train config's data/task/split keys, plus the sheet size."""

    #: abnormality/baseline pairs shown per class in samples.png
    samples_per_class: int = number(4, ge=1, le=50)


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

#: the schema of each Hydra command (conf/<command>.yaml extends ``<command>_schema``)
COMMAND_SCHEMAS: dict[str, type] = {
    "train": TrainConfig,
    "baseline": BaselineConfig,
    "describe": DescribeConfig,
    "evaluate": EvaluateConfig,
    "predict": PredictConfig,
    "explain": ExplainConfig,
    "holdout": HoldoutConfig,
    "prepare": PrepareConfig,
    "ensemble": EnsembleConfig,
    "compare": CompareConfig,
}


def register_configs() -> None:
    """Register the schemas so that ``conf/*.yaml`` files can extend them."""
    cs = ConfigStore.instance()
    for command, schema in COMMAND_SCHEMAS.items():
        cs.store(name=f"{command}_schema", node=schema)
    cs.store(group="schema/model", name="scratch", node=ScratchModelConfig)
    cs.store(group="schema/model", name="pretrained", node=PretrainedModelConfig)
    cs.store(group="schema/model", name="siamese", node=SiameseModelConfig)
