"""Shared geometry of sliding-window ops (Conv, AveragePool): pads and the transposed window.

The input gradient of a window op is a ConvTranspose of the output gradient. ConvTranspose is
only given symmetric pads and an `output_padding` (never `output_shape`, which onnxruntime
re-splits into head/tail pads); asymmetric forward pads and rows the forward never read are
handled by a trailing Slice. The sizes are exact integers computed here at build time.
"""
from __future__ import annotations


def explicit_pads(ctx, in_size, kernel, strides, dilations, auto_pad: str) -> list[int]:
    """Begin pads then end pads, resolving auto_pad the way ONNX defines it."""
    n = len(in_size)
    if auto_pad in ("", "NOTSET"):
        return list(ctx.attr("pads", [0] * (2 * n)))
    if auto_pad == "VALID":
        return [0] * (2 * n)
    begin, end = [], []
    for h, k, s, d in zip(in_size, kernel, strides, dilations):
        out = -(-h // s)
        total = max(0, (out - 1) * s + d * (k - 1) + 1 - h)
        head = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        begin.append(head)
        end.append(total - head)
    return begin + end


def transposed_window(ctx, dy: str, weight: str, in_size, out_size, kernel, strides,
                      dilations, pads, group: int = 1) -> str:
    """ConvTranspose of `dy` (spatial `out_size`) back onto the `in_size` input grid."""
    n = len(in_size)
    begin = pads[:n]
    out_padding, crop, starts, lengths = [], [], [], []
    for i in range(n):
        full = strides[i] * (out_size[i] - 1) + dilations[i] * (kernel[i] - 1) + 1
        exact = in_size[i] + 2 * begin[i] - full  # output_padding that makes pads symmetric
        if 0 <= exact < strides[i]:
            out_padding.append(exact)
            crop.append(begin[i])
        else:  # asymmetric pads: pad less, then slice
            extra = max(0, begin[i] + in_size[i] - full)  # input rows after the last window
            if extra >= strides[i]:
                raise ctx.unsupported(f"{extra} input rows after the last window (stride "
                                      f"{strides[i]}): not a window op this rule knows")
            out_padding.append(extra)
            crop.append(min(begin[i], full + extra - begin[i] - in_size[i]))
        starts.append(begin[i] - crop[i])
        lengths.append(full + out_padding[i] - 2 * crop[i])
    back = ctx.emit("ConvTranspose", [dy, weight], group=group, strides=list(strides),
                    dilations=list(dilations), pads=crop + crop,
                    output_padding=out_padding if any(out_padding) else None)
    if not any(starts) and lengths == list(in_size):
        return back
    ends = [s + h for s, h in zip(starts, in_size)]
    return ctx.emit("Slice", [back, ctx.iconst(starts), ctx.iconst(ends),
                              ctx.iconst(list(range(2, 2 + n)))])
