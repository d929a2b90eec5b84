"""The vocabulary projection's faster product for few rows (vocabtune/vocab_head.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vocabtune.vocab_head import SKINNY_ROWS, VocabProjection, use_fast_vocab_projection


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (5, 1), (2, 3), (1, SKINNY_ROWS), (1, SKINNY_ROWS + 1), (3, 70)])
def test_fast_projection_equals_linear_to_rounding_in_every_shape(shape, bias):
    torch.manual_seed(0)
    plain = torch.nn.Linear(48, 700, bias=bias)
    fast = torch.nn.Linear(48, 700, bias=bias)
    fast.load_state_dict(plain.state_dict())
    use_fast_vocab_projection(type("M", (), {"get_output_embeddings": lambda self: fast})())
    assert type(fast) is VocabProjection
    x = torch.randn(*shape, 48)
    out = fast(x)
    assert out.shape == (*shape, 700) and out.is_contiguous()
    torch.testing.assert_close(out, F.linear(x, plain.weight, plain.bias), atol=1e-5, rtol=1e-5)


def test_loaded_whisper_decodes_the_same_with_tied_weights_and_state_dict(tiny_whisper, tmp_path):
    from transformers.modeling_outputs import BaseModelOutput

    from vocabtune.modelio import load_base

    model = load_base(str(tiny_whisper)).eval()
    head = model.get_output_embeddings()
    assert type(head) is VocabProjection
    assert head.weight is model.get_input_embeddings().weight          # tying kept
    torch.manual_seed(0)
    states = BaseModelOutput(last_hidden_state=torch.randn(3, model.config.max_source_positions,
                                                           model.config.d_model))
    with torch.no_grad():
        fast = model.generate(encoder_outputs=states, max_new_tokens=12)
        head.__class__ = torch.nn.Linear
        plain = model.generate(encoder_outputs=states, max_new_tokens=12)
    assert torch.equal(fast, plain)
    head.__class__ = VocabProjection
    model.save_pretrained(tmp_path / "saved")
    assert set(load_base(str(tmp_path / "saved")).state_dict()) == set(model.state_dict())
