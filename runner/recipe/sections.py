"""The fixed parts of a recipe: sections and sub-models that do not depend on plugins.

Plugin-dependent parts (``data.params``, ``model.params``, the augmentations, and the
flat plugin keys of ``cv``, ``prune`` and ``deploy``) are joined to these bases in
``gaitrun.recipe.model``. Every model is frozen and forbids unknown keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..registry import MODALITIES, PRECISIONS

Modality = Literal[MODALITIES]  # type: ignore[valid-type]
Precision = Literal[PRECISIONS]  # type: ignore[valid-type]


class Strict(BaseModel):
    """Base of every recipe model: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# --- data -------------------------------------------------------------------------------

class Clip(Strict):
    frames: int = Field(25, ge=1, le=4096, description="frames per clip (sequence modalities)")
    stride: int | None = Field(None, ge=1, le=4096,
                               description="step between evaluation windows (plus one ending at the last frame, so all frames are covered); default: frames")
    pad: Literal["error", "loop", "edge", "zero"] = Field(
        "error", description="a sample shorter than frames: error (a bad sample), or fill the window by "
                             "looping it, repeating its last frame (edge) or with zero frames")
    size: tuple[int, int] = Field((64, 44), description="[height, width] of each frame after preprocessing")

    @field_validator("size")
    @classmethod
    def _positive(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not all(1 <= s <= 4096 for s in v):
            raise ValueError("both sizes must be between 1 and 4096")
        return v


class DataBase(Strict):
    modality: Modality = Field("silhouette", description="what the model sees")
    clip: Clip = Field(default_factory=Clip)
    cache: Literal["memory", "disk", "none"] = Field(
        "disk", description="cache decoded, preprocessed tensors in RAM or in the cache folder")
    cache_dir: str | None = Field(None, description="default: $GAITRUN_CACHE or ~/.cache/gaitrun")
    on_bad_sample: Literal["error", "skip"] = Field(
        "error", description="stop on a corrupt file, or skip it and list it in the run folder")
    balance: Literal["none", "class", "condition"] = Field(
        "none", description="balanced batches across classes or walking conditions")
    oversample: bool = Field(False, description="repeat samples of rare classes up to the largest")
    max_samples: int | None = Field(None, ge=1, description="use at most this many samples (smoke tests)")
    workers: int | None = Field(None, ge=1, le=256,
                                description="processes that decode and preprocess; null: one per CPU core")


# --- train ------------------------------------------------------------------------------

class Optimizer(Strict):
    name: Literal["adam", "sgd", "rmsprop", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0, le=10)
    momentum: float = Field(0.0, ge=0, lt=1, description="sgd and rmsprop")
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0, le=1, description="adamw")
    clipnorm: float | None = Field(None, gt=0)


class Loss(Strict):
    name: Literal["cross_entropy", "triplet_batch_all", "triplet_batch_hard", "ce_triplet"] = "cross_entropy"
    margin: float = Field(0.2, gt=0, le=10, description="triplet margin")
    ce_weight: float = Field(1.0, ge=0, description="weight of cross-entropy in ce_triplet")
    label_smoothing: float = Field(0.0, ge=0, lt=1)


class Schedule(Strict):
    name: Literal["none", "reduce_on_plateau", "cosine", "step"] = "none"
    factor: float = Field(0.2, gt=0, lt=1, description="reduce_on_plateau and step: lr multiplier")
    patience: int = Field(3, ge=1, description="reduce_on_plateau: epochs without improvement")
    step_epochs: int = Field(10, ge=1, description="step: epochs between reductions")
    min_lr: float = Field(1e-6, ge=0)
    warmup_epochs: int = Field(0, ge=0)


class EarlyStopping(Strict):
    monitor: str = Field("val_loss", min_length=1)
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True


class Distributed(Strict):
    """Data-parallel training of each fold by Ray Train (``train.distributed``)."""

    workers: int = Field(2, ge=1, le=4096, description="Ray Train workers; train.batch_size is split across them")
    cpus_per_worker: float = Field(1.0, gt=0, le=1024, description="CPUs Ray reserves for each worker")
    gpus_per_worker: float = Field(0.0, ge=0, le=64, description="GPUs Ray reserves for each worker")
    max_failures: int = Field(0, ge=-1, description="worker-group restarts after a failure, each from the "
                                                    "last epoch checkpoint; -1: unlimited")


class Train(Strict):
    optimizer: Optimizer = Field(default_factory=Optimizer)
    loss: Loss = Field(default_factory=Loss)
    batch_size: int = Field(32, ge=1, le=65536)
    epochs: int = Field(10, ge=1, le=100_000)
    schedule: Schedule = Field(default_factory=Schedule)
    early_stopping: EarlyStopping | None = None
    class_weights: Literal["none", "balanced"] | dict[str, float] = "none"
    mixed_precision: bool | Literal["float16", "bfloat16", "auto"] = Field(
        False, description="compute in float16 (true) or bfloat16, variables in float32; auto: float16 on "
                           "a GPU, bfloat16 on a CPU with AMX/AVX-512 BF16, else off. Saved models are float32")
    deterministic: bool = Field(False, description="TensorFlow op determinism (slower, repeatable)")
    strategy: Literal["auto", "mirrored"] = Field("auto", description="mirrored: all local GPUs")
    tensorboard: bool = True
    validate_every: int = Field(1, ge=1, le=100_000,
                                description="validate every N epochs and after the last; N > 1 saves the "
                                            "validation time where no schedule or early stopping reads it")
    distributed: Distributed | None = Field(
        None, description="null: one process; else each fold is trained by Ray Train workers "
                          "(the cluster: $RAY_ADDRESS, else a local Ray)")


# --- cv (plugin keys are added beside these) --------------------------------------------

class TestSplit(Strict):
    fraction: float | None = Field(None, gt=0, lt=1, description="hold this fraction out, grouped")
    group_by: str | None = Field("subject", description="metadata field the test split is grouped by")
    use_dataset_split: bool = Field(False, description="use the dataset's own 'test' split")

    @model_validator(mode="after")
    def _one_way(self) -> TestSplit:
        if (self.fraction is None) == (not self.use_dataset_split):
            raise ValueError("give either 'fraction' or 'use_dataset_split: true'")
        return self


class CvBase(Strict):
    test: TestSplit | None = Field(None, description="a held-out test split, evaluated once at the end")


# --- evaluate ---------------------------------------------------------------------------

Metric = Literal["accuracy", "top_k", "precision", "recall", "f1_macro", "f1_per_class", "confusion_matrix"]


class Knn(Strict):
    k: int = Field(1, ge=1, le=1000)
    metric: Literal["euclidean", "cosine"] = "euclidean"
    protocol: Literal["casia_b", "tum_gaid", "none"] = Field(
        "casia_b", description="gallery/probe split by walking condition")
    exclude_identical_view: bool = True
    per: Literal["subsequence", "sequence", "both"] = Field(
        "both", description="sequence: rank-1 per sequence (one embedding per whole sequence, "
                            "key rank1, the headline); subsequence: per window (rank1_window); both")


class Evaluate(Strict):
    metrics: list[Metric] = Field(default_factory=lambda: ["accuracy", "f1_macro", "confusion_matrix"])
    top_k: int = Field(5, ge=1)
    knn: Knn | None = Field(None, description="k-NN on embeddings (embedding models only)")
    plots: bool = True


# --- prune (plugin keys are added beside these) -----------------------------------------

class Finetune(Strict):
    """Training after pruning. The defaults restart the training's learning rate and let it decay
    to zero over the fine-tune ("learning-rate rewinding", Renda et al. 2020), over two fifths of
    the training's epochs: measured with ``bench/pruning_finetune.py`` at p = 40 per layer, a fifth
    (Embedded-Gait: 25 + 5 after 150) lost 5 points of accuracy on cnn2d_bmvc (mean of 3 seeds),
    two fifths none. The training's own schedule and early stopping do not apply: they are set
    for ``train.epochs``."""

    epochs: int | None = Field(None, ge=0, le=100_000, description="default: 2/5 of train.epochs, at least 1")
    lr: float | None = Field(None, gt=0, le=10, description="default: train.optimizer.lr")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="cosine: lr decays to 0 over the epochs")
    optimizer: Literal["adam", "sgd", "rmsprop", "adamw"] | None = Field(
        None, description="default: the train optimizer")
    fresh_head: bool = Field(False, description="re-initialise the softmax layer, as Embedded-Gait does")
    recalibrate_bn: int = Field(20, ge=0, le=100_000, description=(
        "batches of training windows that re-estimate every BatchNormalization's moving statistics "
        "after surgery, before fine-tuning (adaptive BN); 0 = off"))


class PruneBase(Strict):
    finetune: Finetune = Field(default_factory=Finetune)

    def finetune_plan(self, train: Train) -> dict[str, Any]:
        """The fine-tune's epochs, lr and schedule with the defaults resolved against ``train``."""
        ft = self.finetune
        return {"epochs": ft.epochs if ft.epochs is not None else max(1, round(train.epochs * 2 / 5)),
                "lr": ft.lr if ft.lr is not None else train.optimizer.lr, "schedule": ft.schedule,
                "optimizer": ft.optimizer or train.optimizer.name, "fresh_head": ft.fresh_head,
                "recalibrate_bn": ft.recalibrate_bn}


# --- deploy (plugin keys are added beside these) ----------------------------------------

class BenchSettings(Strict):
    warmup: int = Field(5, ge=0)
    iterations: int = Field(30, ge=1)
    min_time_s: float = Field(0.3, ge=0, le=60, description="timed seconds per model and batch size at "
                                                            "least: fast models get more calls than iterations")
    threads: int | None = Field(None, ge=1, description="default: all cores")


class DeployBase(Strict):
    precision: Precision = "fp32"
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 8], min_length=1)
    calibration_samples: int = Field(128, ge=1, le=100_000, description="INT8: drawn from the train split")
    max_drop: float = Field(0.01, ge=0, le=1, description="largest metric loss the export may cause")
    bench: BenchSettings = Field(default_factory=BenchSettings)

    @field_validator("batch_sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        if any(b < 1 or b > 65536 for b in v):
            raise ValueError("batch sizes must be between 1 and 65536")
        return sorted(set(v))
