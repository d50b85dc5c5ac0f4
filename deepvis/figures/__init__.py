"""The paper's figures from one command each: a sheet of optimized images per setting
(Figure 3 style) or per layer (Figure 4 style), made in batches, resumable, on one machine
or spread over a Dask cluster, with each class unit's image judged by other networks.

units   which units a sheet shows by default, per model (documented lists)
plan    the jobs of a sheet: one FindParams per cell, grouped into batches
records one finished cell on disk (image + JSON, written atomically): the resume point
runner  runs batches here or on Dask workers; both give the same bits
sheet   draws the labelled grid
"""
