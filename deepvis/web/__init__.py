"""`deepvis serve`: the live toolbox as a web page, for a machine without a screen.

The page is a second front end of the same core as the window: each browser gets its own
`ToolboxApp` (state, input fetcher, network worker, jpg loader, main loop), whose display is
a `WebDisplay` instead of an OpenCV window. Keys and mouse actions reach that main loop
through the display's `wait_key`; the frames it shows go back to the browser as PNG pieces
of the regions that changed. All clients share one loaded model, its gradient sessions and
one jpg cache.

Modules: `protocol` (what a browser may send, validated; key names -> codes), `inputs`
(the input directory plus a client's uploads), `geometry` (which layer name or unit tile is
under the pointer), `encode` (changed regions -> PNG pieces), `client` (one browser),
`server` (aiohttp routes, token, safe file access).
"""
