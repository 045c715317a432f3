"""FLOPs of a training step as PyTorch runs it: FlopCounterMode over the forward and `loss.backward()`.

torch 2.14's FlopCounterMode counts the weight gradient of a grouped convolution as if the convolution had one
group (its formula transposes the batch and channel axes and drops `groups`): g times the MACs the kernel does.
`measure` counts it with the groups (`exact_conv_backward`); `raw=True` gives FlopCounterMode's own count. On CPU,
scaled_dot_product_attention with gradients runs `_scaled_dot_product_flash_attention_for_cpu`, which
FlopCounterMode does not count: the measurement runs the math backend (its products are counted).
"""

from __future__ import annotations

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.checkpoint import checkpoint, set_checkpoint_early_stop
from torch.utils.flop_counter import FlopCounterMode, conv_backward_flop, conv_flop_count

aten = torch.ops.aten


def exact_conv_backward(grad_out_shape, x_shape, w_shape, _bias, stride, padding, dilation, transposed,
                        output_padding, groups, output_mask, out_shape, **kwargs) -> int:  # fmt: skip
    """FlopCounterMode's convolution backward with the weight gradient of a grouped convolution divided by its
    groups (each group's weights see only their own input channels)."""
    formula = conv_backward_flop.__wrapped__  # FlopCounterMode's own, on shapes
    count = formula(
        grad_out_shape, x_shape, w_shape, _bias, stride, padding, dilation, transposed, output_padding, groups,
        [output_mask[0], False, False], out_shape,
    )  # fmt: skip
    if output_mask[1]:
        whole = formula(
            grad_out_shape, x_shape, w_shape, _bias, stride, padding, dilation, transposed, output_padding, groups,
            [False, True, False], out_shape,
        )  # fmt: skip
        assert whole % groups == 0
        count += whole // groups
    return count


def measure(module, x, *, loss=None, raw=False, recompute=False, requires_grad=False):
    """(forward FLOPs, forward + backward FLOPs) of one step on the batch `x`."""
    module.train()
    if requires_grad:
        x = x.detach().requires_grad_(True)
    mapping = {} if raw else {aten.convolution_backward: exact_conv_backward}
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        if recompute:  # the whole forward again: without early stop, which ends after the last tensor it needs
            with set_checkpoint_early_stop(False):
                y = checkpoint(module, x, use_reentrant=False)
        else:
            y = module(x)
        forward = counter.get_total_flops()
        if loss is None:
            y = y[0] if isinstance(y, tuple) else y
            y = getattr(y, "logits", y)
            if y.requires_grad:
                y.float().sum().backward()
        else:
            loss(y).backward()
    return forward, counter.get_total_flops()


__all__ = ["conv_flop_count", "measure"]
