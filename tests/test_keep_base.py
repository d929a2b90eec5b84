"""The keep-the-base distillation term: a pure function on logits, and its use in training."""

from dataclasses import replace

import pytest
import torch

from vocabtune.keep_base import KeepBaseLoss, agreeing_kl, base_logits

from test_training import config, tiny_dataset, tiny_model, vocab_dir  # noqa: F401  (fixtures)


def _logits(*rows):
    return torch.tensor([rows], dtype=torch.float32)          # (1, positions, vocab)


def test_zero_when_the_fine_tuned_model_predicts_like_the_base():
    teacher = _logits([3.0, 0.0, 0.0], [0.0, 2.0, 1.0])
    labels = torch.tensor([[0, 1]])
    assert agreeing_kl(teacher.clone(), teacher, labels).item() == pytest.approx(0.0, abs=1e-7)


def test_counts_only_positions_the_base_gets_right():
    teacher = _logits([3.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 5.0])
    labels = torch.tensor([[0, 0, -100]])       # base right at 0, wrong at 1, 2 is padding
    student = teacher.clone()
    student[0, 1] = torch.tensor([9.0, -9.0, 0.0])   # free to learn where the base is wrong
    student[0, 2] = torch.tensor([9.0, 0.0, 0.0])    # and where there is no label
    assert agreeing_kl(student, teacher, labels).item() == pytest.approx(0.0, abs=1e-7)
    student[0, 0] = torch.tensor([3.0, 1.0, 0.0])    # drifting where the base is right costs
    drift = agreeing_kl(student, teacher, labels).item()
    assert drift > 0
    # divided by the step's label tokens (2 here), like the cross-entropy
    assert agreeing_kl(student, teacher, labels, count=4).item() == pytest.approx(drift / 2)


def test_no_agreeing_position_gives_zero_with_a_graph():
    student = _logits([0.0, 1.0]).requires_grad_()
    value = agreeing_kl(student, _logits([1.0, 0.0]), torch.tensor([[1]]))
    value.backward()
    assert value.item() == 0.0 and student.grad is not None


def test_loss_adds_the_weighted_term_only_with_a_teacher():
    logits = _logits([0.0, 2.0], [1.0, 0.0])
    labels = torch.tensor([[1, 0]])
    loss = KeepBaseLoss(0.5)
    plain = loss({"logits": logits}, labels)
    loss.teacher = _logits([0.0, 4.0], [3.0, 0.0])
    assert loss({"logits": logits}, labels).item() == pytest.approx(
        plain.item() + 0.5 * agreeing_kl(logits, loss.teacher, labels).item())


def test_base_logits_switch_the_adapter_off_and_leave_the_cached_batch_intact(
        tiny_dataset, tiny_model, vocab_dir, tmp_path):  # noqa: F811
    from vocabtune.collator import WhisperCollator
    from vocabtune.training import prepare

    inputs = prepare(config(tiny_dataset, tiny_model, vocab_dir, tmp_path / "run"))
    model = inputs.model
    with torch.no_grad():                       # make the adapter matter
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.eval()
    collate = WhisperCollator(inputs.processor.tokenizer.pad_token_id)
    examples = [inputs.train[i] for i in range(2)]
    batch = collate(examples)
    assert "past_key_values" in batch
    teacher = base_logits(model, batch)
    plain = collate([{k: v for k, v in e.items() if k != "cross_kv"} for e in examples])
    with torch.no_grad():
        with model.disable_adapter():
            expected = model(**{k: v for k, v in plain.items() if k != "labels"}).logits
        student = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        student_plain = model(**{k: v for k, v in plain.items() if k != "labels"}).logits
    assert torch.allclose(teacher, expected, atol=1e-5)
    assert torch.allclose(student, student_plain, atol=1e-5)     # its cache was not touched
    assert not torch.allclose(student, teacher, atol=1e-3)


def test_training_with_keep_base_runs_and_records_the_weight(tiny_dataset, tiny_model, vocab_dir,
                                                             tmp_path):  # noqa: F811
    import json

    from vocabtune.training import train

    cfg = replace(config(tiny_dataset, tiny_model, vocab_dir, tmp_path / "run"), keep_base=1.0, max_steps=2)
    result = train(cfg)
    assert result.global_step == 2
    meta = json.loads((result.best_dir / "vocabtune_train.json").read_text())
    assert "keep_base" in json.dumps(meta)
