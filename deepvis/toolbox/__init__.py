"""The live toolbox (`deepvis toolbox`) and its headless twin (`deepvis render`).

Split as the original: `state` (keys -> state, pure), `frame` + `panes/` (state + network
results -> pixels, pure), `network` + `worker` (forward and back on the newest frame, in a
thread), `jpgs` (per-unit pictures, loaded in a thread into a FIFO cache), `inputs` (static
files or a capture device, in a thread) and `app` (the main loop). `session.replay` runs the
same state, network and drawing code synchronously, so both commands draw identical frames.

Decisions on the original's quirks (original-toolbox §12), each also noted where it lives:
 1  Py2 integer divisions are written as floor divisions (//), giving the original's numbers.
 9  The status line is one line. `extra_msg` ("h for help") is shown on the first draw only
    (and after a reset), as the original.
10  An unhandled key does not cancel a pending redraw.
11  Tiling trims the last pixel row and column, as the original.
12  Directory listings are sorted, except with an original settings_local.py (os.listdir).
13  Siamese back pane: each half of the gradient is filtered on its own in every filter mode
    and shown side by side at half the pane width (the original swapped rows and columns).
15  Pattern mode without a sprite sheet shows black tiles, as the original.
16  Zoom mode 2 survives turning back off, as the original.
17  The jpg loader serves the newest request and never drops one; the cache is FIFO.
18  The input is the model's own input tensor; the layer list drops it (the first blob).
20  Camera frames are mirrored and contrast-stretched; video files are not mirrored.
24  Keys are read with waitKeyEx; capitals lost by OpenCV's Qt backend are restored from the
    Shift key that precedes them (keys.KeyReader). Text keeps the original's heights and line
    spacing on OpenCV 4 and 5 (text.render_scale; 5 draws other glyphs). Linux PgUp/PgDn
    are bound.
26  FPS is 1 / the interval between the last two network completions, shown for 2 s; the
    window redraws when it expires.
27  The layers pane's back view of a blob with an in-place ReLU shows the diff below that
    ReLU, as Caffe's shared buffer did.
28  Top-5 ties keep the lower class index first (stable sort).
Missing per-unit pictures leave plain background, as the original drew nothing there.
"""
