"""Per-unit visualizations at scale: top-N images per unit, their receptive-field crops
and deconvs (the original's find_maxes scripts, original-toolbox §10.3).

Modules: images (listing, background decoding), tracker (exact top-N tables), scan
(the single-process loop), checkpoint (resumable state), store (the MAXES .npz
format), receptive (regions from the ONNX graph), crops and render (tiles, montages,
the jpg tree), distributed (Dask; imported only when asked for).
"""
