"""lrlib's additions to the paper's method, each switchable from `LRConfig` and each measured on
the toy benchmark (lrlib/bench/README.md). `lrlib.pipeline` composes them with the paper's stages;
no stage imports them.

| module | what it adds | switched by |
|---|---|---|
| `grounding.py` | anchors chosen by the caption: a pool of attention peaks (one per region), each region's view scored against the caption, pruning | `anchor_pool`, `anchor_cover`, `anchor_view`, `prune_margin`, `max_blob` |
| `proposals.py` | the proposal family: the paper's squares, fitted, ladder | `proposals` |
| `fitted.py` | the anchor's DINO blob and its box (the ladder scales it); "fitted" proposals | `fit_level`, `fit_min`, `fit_max`, `fit_reach` |
| `guided_filter.py` | the blob snapped to the image's edges | `fit_snap` |
| `proposals_ladder.py` | boxes from a tight part of the blob to the whole object with context (the default family) | `proposals`, `ladder_lo`, `ladder_hi` |
| `box_terms.py` | two terms added to the RGN's loss: L_cover (the blob left outside the box) and L_spill (a neighbour inside it) | `lambda_cover`, `cover_margin`, `lambda_spill` |
| `relations.py` | "the X left of the Y" read geometrically | `relation_weight` |
| `drafts.py` | cheap candidates for choosing, the winner made again at full quality | `draft_steps` |
| `fullres.py` | the winning box painted again on the photo at the editor's resolution | `full_res`, `full_res_margin` |

`LRConfig.paper()` switches off every one that changes what the method chooses; `full_res`, which
only gives a photo larger than the canvas back its resolution, stays on there too.
"""
