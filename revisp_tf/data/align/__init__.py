"""Where an RGB lies on its RAW mosaic: `render` (ISP renders: integer shifts), `warp` (a camera's own JPEG: a fitted warp)."""
