"""Shared geometry of sliding-window ops (Conv, AveragePool): pads and the transposed window.

The input gradient of a window op is a ConvTranspose of the output gradient. ConvTranspose is
only given symmetric pads and an `output_padding` (never `output_shape`, which onnxruntime
re-splits into head/tail pads); asymmetric forward pads and rows the forward never read are
handled by a trailing Slice. The sizes are exact integers computed here at build time.

A stride-1 window is the common case (every conv of CaffeNet after conv1), and there the same
gradient is a plain Conv with the kernel flipped and its in/out channels swapped, padded by
the kernel's extent minus the forward pad. onnxruntime's Conv (blocked NCHWc kernels) runs it
15-25% faster than its ConvTranspose; the flipped kernel is computed in the graph from the
shared weight, so nothing new is stored.
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
    full_pads = [d * (k - 1) - p for d, k, p in zip(dilations * 2, kernel * 2, pads)]
    if all(s == 1 for s in strides) and min(full_pads) >= 0:
        return ctx.emit("Conv", [dy, flipped_kernel(ctx, weight, group, n)], group=group,
                        dilations=list(dilations), pads=full_pads)
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


def flipped_kernel(ctx, weight: str, group: int, n: int) -> str:
    """Conv's (M, C/group, k...) kernel as the kernel of its transpose: (C, M/group, k...),
    each group's in/out channels swapped and every spatial axis reversed."""
    spatial = list(range(2, 2 + n))
    if group == 1:
        swapped = ctx.emit("Transpose", [weight], perm=[1, 0] + spatial)
    else:
        m, c_group, *kernel = ctx.static_shape(weight, False)
        grouped = ctx.emit("Reshape", [weight, ctx.iconst([group, m // group, c_group, -1])])
        swapped = ctx.emit("Reshape", [ctx.emit("Transpose", [grouped], perm=[0, 2, 1, 3]),
                                       ctx.iconst([c_group * group, m // group] + kernel)])
    return ctx.emit("Slice", [swapped, ctx.iconst([-1] * n), ctx.iconst([_MOST_NEGATIVE] * n),
                              ctx.iconst(spatial), ctx.iconst([-1] * n)])


_MOST_NEGATIVE = -(2 ** 63)
