"""Training on MONAI/Ignite: stages and freezing, resumable stages, data records and samplers,
Ignite handlers, progress lines, the staged ``train`` workflow, and the settings recorded with weights."""

from mammo_monai.training.checkpoints import SaveBest
from mammo_monai.training.handlers import PublishBest, StageEarlyStopping, ValidationPlots
from mammo_monai.training.model_meta import MODEL_META, trained_setting, write_model_meta
from mammo_monai.training.progress import StageProgress
from mammo_monai.training.random_states import RandomStates
from mammo_monai.training.records import make_sampler, records
from mammo_monai.training.resume import StageCheckpoint, StageRunner, previous_stage_checkpoint, training_id
from mammo_monai.training.stages import apply_stage, prepare_network, stage_lr_scheduler, trainable_parameters

__all__ = [
    "MODEL_META",
    "PublishBest",
    "RandomStates",
    "SaveBest",
    "StageCheckpoint",
    "StageEarlyStopping",
    "StageProgress",
    "StageRunner",
    "ValidationPlots",
    "apply_stage",
    "make_sampler",
    "prepare_network",
    "previous_stage_checkpoint",
    "records",
    "stage_lr_scheduler",
    "trainable_parameters",
    "trained_setting",
    "training_id",
    "write_model_meta",
]
