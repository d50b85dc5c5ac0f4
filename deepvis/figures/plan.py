"""The cells of a sheet as jobs, and the batches they run in.

A job is one optimization: a setting (a preset, or `none`) applied to one unit. Jobs that
share a layer and a setting run together, `batch_size` at a time, in one optimize() call;
a unit's result does not depend on its batch (see optimize.loop), so how jobs are cut
into batches, here or on a cluster, never changes a picture.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..optimize.params import FindParams


@dataclass(frozen=True)
class Job:
    row: str             # the sheet row it belongs to (a setting or a layer)
    setting: str         # preset name or "none"
    layer: str
    unit: int
    params: FindParams

    @property
    def key(self) -> str:
        """File-safe, unique within a sheet."""
        return f"{self.setting}_{self.layer.replace('/', '_')}_{self.unit:04d}"


def centre_of(model, layer: str) -> tuple[int, int]:
    shape = model.blob_shapes[layer][1:]
    return (shape[1] // 2, shape[2] // 2) if len(shape) == 3 else (0, 0)


def jobs_for(model, rows, values_for, spatial=None) -> list[Job]:
    """rows: (row label, setting, layer, units). Conv units are pushed at the centre unless
    `spatial` says where; fully connected ones at (0, 0)."""
    jobs = []
    for row, setting, layer, units in rows:
        values = values_for(setting)
        values["push_layer"] = layer
        conv = len(model.blob_shapes[layer]) == 4
        values["push_spatial"] = spatial if spatial is not None and conv else \
            centre_of(model, layer)
        for unit in units:
            jobs.append(Job(row, setting, layer, int(unit),
                            FindParams(**dict(values, push_channel=int(unit)))))
    return jobs


def batches(jobs: list[Job], batch_size: int) -> list[list[Job]]:
    """Jobs grouped by (layer, setting), cut into batch_size pieces, and ordered piece by
    piece across the groups (the first units of every row, then the next ones), so a run
    stopped early leaves whole columns of a sheet."""
    groups: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.layer, job.setting), []).append(job)
    pieces = [[group[i:i + batch_size] for i in range(0, len(group), batch_size)]
              for group in groups.values()]
    return [p[k] for k in range(max(map(len, pieces), default=0)) for p in pieces
            if k < len(p)]
