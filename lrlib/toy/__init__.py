"""The toy world: synthetic scenes of coloured shapes with ground truth, and a model-free judge.

`scenes` draws pictures, captions and edit tasks (with their ideal results); `judge` grades an
edited region by colour hue and shape geometry, without any learned model.
"""
from lrlib.toy.scenes import (BENCHMARK_SEED0, CAPTION_KINDS, COLOURS, EDIT_KINDS, RELATIONS,
                              SHAPES, TRAIN_SEED_LIMIT, Background, EditTask, Obj, Scene,
                              benchmark_tasks, caption_object, caption_scene, ground_truth_edit,
                              make_edit_task, make_object, paint_object, random_background,
                              relation, relation_holds, render_background, render_batch,
                              render_scene, rerender, shape_coverage, side_range)
from lrlib.toy.judge import Verdict, judge_edit, judge_region, psnr, seam
