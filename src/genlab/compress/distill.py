"""Knowledge distillation of a GPT into a smaller one (Hinton, Vinyals & Dean 2015, "Distilling the
knowledge in a neural network", sec. 2).

The student is trained on a mix of the teacher's softened next-token distribution and the data:

    L = alpha T^2 KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) CE(z_s, x_next),

``T^2`` keeping the soft term's gradients on the scale of the hard one as ``T`` grows (their eq. 2 and
the remark after it); the KL is averaged over every predicted position. ``init="teacher"`` starts the
student from teacher layers, as DistilBERT / DistilGPT2 do (Sanh et al. 2019, sec. 3: one layer out of
two): embeddings, final LayerNorm and the blocks at evenly spaced depths ``round(i (L_t - 1) / (L_s - 1))``
are copied; ``init="random"`` starts from the usual initialisation. The student keeps the teacher's
tokenizer (same codec) and, for a teacher-layer start, its width and heads.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from genlab.config import from_dict, to_dict
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, NotSupportedError
from genlab.models.transformer import TransformerModel
from genlab.train import Batch, Losses, Phase, TrainConfig, Trainer

#: Name of this transformation in a compressed run's ``config.json``.
METHOD = "distill"
INITS: tuple[str, ...] = ("teacher", "random")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, *,
            temperature: float, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hinton's loss (module doc): logits ``(N, V)``, targets ``(N,)`` -> ``(total, soft, hard)`` scalars."""
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                    F.log_softmax(teacher_logits / temperature, dim=-1),
                    log_target=True, reduction="batchmean") * temperature ** 2
    hard = F.cross_entropy(student_logits, targets)
    return alpha * soft + (1 - alpha) * hard, soft, hard


def student_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher block copied into each student block: evenly spaced, first and last included."""
    if student_layers == 1:
        return [teacher_layers - 1]
    return [round(i * (teacher_layers - 1) / (student_layers - 1)) for i in range(student_layers)]


def distill(teacher: TransformerModel, data: Dataset, *, student: dict[str, Any], steps: int,
            temperature: float = 2.0, alpha: float = 0.5, init: Literal["teacher", "random"] = "teacher",
            train: dict[str, Any] | None = None) -> tuple[TransformerModel, dict[str, Any]]:
    """A student of ``teacher`` trained ``steps`` steps on ``data`` (module doc) and the transform's record.

    Args:
        teacher: a fitted transformer (text, images or points; not tables).
        data: its training data (the student sees the same tokens).
        student: options of the student's :class:`TransformerConfig` that differ from the teacher's,
            e.g. ``{"n_layer": 2}``.
        steps: Trainer steps.
        temperature: ``T > 0``; alpha: weight in ``[0, 1]`` of the soft term (0 = training from scratch).
        init: ``"teacher"`` (teacher layers) or ``"random"``.
        train: TrainConfig fields over the teacher's training settings (default: the teacher's, with no EMA).

    Raises:
        NotSupportedError: a teacher of another family, or a table model.
        ConfigError: a student larger than its teacher, changed vocabulary settings, bad T, alpha, init
            or steps, or a teacher-layer start with another width or head count.
    """
    if not isinstance(teacher, TransformerModel):
        raise NotSupportedError(f"distillation is for the transformer family, not {teacher.family} "
                                "(GAN and VAE sample in one step already; quantise or prune them)")
    if teacher.data_.modality == "tables":
        raise NotSupportedError("distillation of table transformers is not supported")
    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}; choose one of: {', '.join(INITS)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"distillation needs steps >= 1, got {steps!r}")
    if not temperature > 0 or not 0 <= alpha <= 1:
        raise ConfigError(f"temperature must be > 0 and alpha in [0, 1], got {temperature!r} and {alpha!r}")
    changed = set(student) - {"n_layer", "n_head", "n_embd", "dropout"}
    if changed:
        raise ConfigError(f"a student may change n_layer, n_head, n_embd and dropout, not {', '.join(sorted(changed))}")
    config = from_dict(type(teacher.config), {**to_dict(teacher.config), **student}, what="student")
    t = teacher.config
    if config.n_layer > t.n_layer or config.n_embd > t.n_embd or (config.n_layer, config.n_embd) == (t.n_layer, t.n_embd):
        raise ConfigError(f"the student ({config.n_layer} layers, width {config.n_embd}) must be smaller than its "
                          f"teacher ({t.n_layer} layers, width {t.n_embd}) and no wider or deeper")
    if init == "teacher" and (config.n_embd, config.n_head) != (t.n_embd, t.n_head):
        raise ConfigError("a student started from teacher layers keeps the teacher's n_embd and n_head; "
                          "use init='random' for another width")
    model = TransformerModel(config)
    base = teacher.train_config_ or teacher.default_train_config()
    settings = replace(base, steps=steps, max_time=None, ema_decay=None, eval_every=0, checkpoint_every=0)
    settings = from_dict(TrainConfig, {**to_dict(settings), **(train or {})}, what="training")
    model.initialise(teacher.codec_, teacher.data_, seed=settings.seed)
    model.train_config_ = settings
    layers = student_layers(t.n_layer, config.n_layer) if init == "teacher" else []
    if init == "teacher":
        _copy_layers(teacher.network_, model.network_, layers)
    teacher_net = teacher.network_.eval()
    for parameter in teacher_net.parameters():
        parameter.requires_grad_(False)

    bos, first_class = teacher.codec_.bos, teacher.codec_.vocab_size
    class_tokens = teacher.token_count - teacher.codec_.vocab_size
    label_dropout = config.label_dropout if class_tokens else 1.0

    def loss(module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
        # batch.x: (B, L) token rows -> logits (B, L-1, V) of student and teacher
        tokens = batch.x
        if batch.y is not None and label_dropout < 1:   # class tokens as the teacher was trained with them
            keep = torch.rand(len(tokens), generator=generator, device=generator.device) >= label_dropout
            start = torch.where(keep.to(tokens.device), first_class + batch.y, torch.full_like(batch.y, bos))
            tokens = torch.cat([start[:, None], tokens[:, 1:]], dim=1)
        logits = module(tokens[:, :-1])
        with torch.no_grad():
            target_logits = teacher_net.to(tokens.device)(tokens[:, :-1])
        V = logits.shape[-1]
        total, soft, hard = kd_loss(logits.reshape(-1, V), target_logits.reshape(-1, V), tokens[:, 1:].reshape(-1),
                                    temperature=temperature, alpha=alpha)
        return Losses(total, {"soft": float(soft.detach()), "nll": float(hard.detach())})

    x = torch.as_tensor(teacher.codec_.encode(data.x_train))
    y = torch.from_numpy(data.y_train) if data.y_train is not None and class_tokens else None
    result = Trainer(settings).fit(model.network_, [Phase("model", model.network_, loss)], x, y)
    model.history_ = result.history
    model.network_.cpu().eval()
    record = {"method": METHOD, "teacher_layers": t.n_layer, "student": dict(student), "steps": steps,
              "temperature": temperature, "alpha": alpha, "init": init, "copied_layers": layers}
    return model, record


def _copy_layers(teacher: nn.Module, student: nn.Module, layers: list[int]) -> None:
    """Embeddings, final LayerNorm and teacher blocks ``layers`` into the student (same width)."""
    with torch.no_grad():
        student.wte.weight.copy_(teacher.wte.weight)
        student.wpe.weight.copy_(teacher.wpe.weight)
        student.ln_f.load_state_dict(teacher.ln_f.state_dict())
        for block, index in zip(student.h, layers):
            block.load_state_dict(teacher.h[index].state_dict())
