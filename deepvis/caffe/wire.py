"""Protocol-buffer wire format decoded straight from a (memory-mapped) buffer.

Every sub-message is decoded in place by offsets into the one buffer, and packed
float runs become NumPy views of it, so a 240 MB .caffemodel is neither copied nor
re-sliced. Offsets in error messages are absolute byte offsets in the file.
"""
from __future__ import annotations

import struct

import numpy as np

from deepvis.caffe import schema
from deepvis.caffe.schema import WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT
from deepvis.errors import FormatError

_FIXED_WIDTH = {WIRE_FIXED32: 4, WIRE_FIXED64: 8}
_RUN_CHUNK = 1 << 16     # values examined per step when vectorising an unpacked run


class WireReader:
    """Decodes schema messages from ``buffer``; ``source`` names the file in errors."""

    def __init__(self, buffer, source: str):
        self.view = memoryview(buffer).cast("B")
        self.source = source

    def fail(self, offset: int, what: str) -> FormatError:
        return FormatError(f"{self.source}: {what} at byte offset {offset}")

    def decode(self, message_name: str, start: int = 0, end: int | None = None) -> dict:
        """Field name -> value for the fields present; repeated floats become arrays."""
        end = len(self.view) if end is None else end
        message = schema.message(message_name)
        out: dict = {}
        repeated: dict[str, list] = {}
        pos = start
        while pos < end:
            tag_pos = pos
            tag, pos = self.varint(pos, end)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                raise self.fail(tag_pos, f"field number 0 in {message_name} (not a Caffe file?)")
            value_start, pos = self._skip_value(wire, tag_pos, pos, end)
            field = message.by_number.get(number)
            if field is None:
                continue
            if wire == field.wire_type:
                if field.repeated and field.kind in schema.FLOAT_DTYPES and wire != WIRE_LEN:
                    values, pos = self._fixed_run(field, tag_pos, value_start, end)
                    repeated.setdefault(field.name, []).append(values)
                    continue
                value = self._scalar(field, wire, value_start, pos)
                if value is _ABSENT:
                    continue
                if field.repeated:
                    repeated.setdefault(field.name, []).append(value)
                elif field.kind == "message" and field.name in out:
                    _merge(field.type, out[field.name], value)
                else:
                    out[field.name] = value
            elif wire == WIRE_LEN and field.packable:
                repeated.setdefault(field.name, []).extend(self._packed(field, value_start, pos))
            else:
                raise self.fail(tag_pos, f"{message_name}.{field.name} has wire type {wire}, "
                                         f"expected {field.wire_type}")
        for name, values in repeated.items():
            out[name] = _collect(message.by_name[name], values)
        return out

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        view, start, result, shift = self.view, pos, 0, 0
        while True:
            if pos >= end:
                raise self.fail(start, "truncated varint")
            byte = view[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result, pos
            shift += 7
            if shift >= 70:
                raise self.fail(start, "varint longer than 10 bytes")

    def _skip_value(self, wire: int, tag_pos: int, pos: int, end: int) -> tuple[int, int]:
        """(start of the value's payload, position after the value)."""
        if wire == WIRE_VARINT:
            return pos, self.varint(pos, end)[1]
        if wire == WIRE_LEN:
            length, pos = self.varint(pos, end)
            if length > end - pos:
                raise self.fail(tag_pos, f"truncated field: {length} bytes declared, "
                                         f"{end - pos} left")
            return pos, pos + length
        if wire in _FIXED_WIDTH:
            if _FIXED_WIDTH[wire] > end - pos:
                raise self.fail(tag_pos, "truncated fixed-width field")
            return pos, pos + _FIXED_WIDTH[wire]
        raise self.fail(tag_pos, f"unsupported wire type {wire} (not a Caffe file?)")

    def _scalar(self, field: schema.Field, wire: int, start: int, end: int):
        view = self.view
        if wire == WIRE_VARINT:
            return _from_varint(field, self.varint(start, end)[0])
        if wire == WIRE_FIXED32:
            return struct.unpack_from("<f", view, start)[0]
        if wire == WIRE_FIXED64:
            return struct.unpack_from("<d", view, start)[0]
        if field.kind == "message":
            return self.decode(field.type, start, end) if schema.message(field.type) else _ABSENT
        if field.kind == "bytes":
            return bytes(view[start:end])
        try:
            return str(view[start:end], "utf-8")
        except UnicodeDecodeError:
            raise self.fail(start, f"field '{field.name}' is not valid UTF-8") from None

    def _packed(self, field: schema.Field, start: int, end: int):
        if field.kind in schema.FLOAT_DTYPES:
            dtype = schema.FLOAT_DTYPES[field.kind]
            if (end - start) % dtype.itemsize:
                raise self.fail(start, f"packed '{field.name}' of {end - start} bytes is not "
                                       f"a whole number of values")
            return [np.frombuffer(self.view[start:end], dtype)]
        values = []
        while start < end:
            value, start = self.varint(start, end)
            value = _from_varint(field, value)
            if value is not _ABSENT:
                values.append(value)
        return values

    def _fixed_run(self, field: schema.Field, tag_pos: int, value_pos: int, end: int):
        """Reads consecutive unpacked floats sharing one tag with NumPy, not a Python loop."""
        tag = np.frombuffer(self.view[tag_pos:value_pos], np.uint8)
        width = schema.FLOAT_DTYPES[field.kind].itemsize
        stride = len(tag) + width
        chunks, pos = [], tag_pos
        while True:
            count = min((end - pos) // stride, _RUN_CHUNK)
            if count == 0:
                break
            rows = np.frombuffer(self.view[pos:pos + count * stride], np.uint8)
            rows = rows.reshape(count, stride)
            same = (rows[:, :len(tag)] == tag).all(axis=1)
            taken = count if same.all() else int(same.argmin())
            chunks.append(rows[:taken, len(tag):].copy())
            pos += taken * stride
            if taken < count:
                break
        values = np.concatenate(chunks).view(schema.FLOAT_DTYPES[field.kind]).ravel()
        return values, pos


class _Absent:
    """An enum value this schema does not know: proto2 treats the field as unset."""


_ABSENT = _Absent()


def _from_varint(field: schema.Field, value: int):
    if field.kind == "bool":
        return value != 0
    if value >= 1 << 63:
        value -= 1 << 64          # negative int32/int64 are 10-byte two's complement
    if field.kind == "enum":
        return schema.ENUMS[field.type].get(value, _ABSENT)
    return value


def _collect(field: schema.Field, values: list):
    """Joins the occurrences of a repeated field; float runs stay NumPy arrays."""
    if field.kind not in schema.FLOAT_DTYPES:
        return values
    dtype = schema.FLOAT_DTYPES[field.kind]
    if len(values) == 1 and isinstance(values[0], np.ndarray):
        return values[0].astype(dtype.newbyteorder("="), copy=False)
    return np.concatenate([np.atleast_1d(np.asarray(v, dtype)) for v in values]).astype(
        dtype.newbyteorder("="), copy=False)


def _merge(message_name: str, old: dict, new: dict) -> None:
    """Protobuf merge of a repeated occurrence of a singular message field."""
    fields = schema.message(message_name).by_name
    for name, value in new.items():
        f = fields[name]
        if name not in old:
            old[name] = value
        elif f.repeated:
            old[name] = (np.concatenate([old[name], value]) if isinstance(value, np.ndarray)
                         else old[name] + value)
        elif f.kind == "message":
            _merge(f.type, old[name], value)
        else:
            old[name] = value
