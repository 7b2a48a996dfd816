"""Which of MediaPipe Face Mesh's 468 points stands for each of dlib's 68 (iBUG 300-W order).

The rest of lipdub speaks in the 68-point scheme (``records.MOUTH`` = 48..67, the eyes at 36..47,
the jaw 0..16), so the mesh is read through this table and every consumer keeps working. Jaw
and lip entries are the points of the mesh's matching contour (face oval, outer lip, inner lip)
nearest to dlib's point, by the median distance in IOD over 188 frames of the 9 test clips of
../shared/data (every 15th frame, plain mesh, 2026-12-07); they come out mirror-symmetric, and
the corners and midlines (chin 152, lip midlines 0, 13, 14, 17) are the mesh's own. Brows, nose
and eyes were picked by hand on the same contours and checked the same way (median 0.02-0.11 IOD
from dlib).
The agreement per group is measured by ``bench/analysis_quality.py`` (``bench/results.md``).

The inner lips (60..67) come from the mesh's inner-lip contour (:data:`INNER_LIPS`), whose upper
and lower points meet when the lips close: a closed mouth reads a gap near 0, where dlib's eight
inner-lip points rarely meet (~0.007 IOD on closed mouths).

Mesh index reference: MediaPipe's canonical face model
(``canonical_face_model_uv_visualization.png`` in the mediapipe repository). "Right" and "left"
are the subject's: the subject's right eye is on the image's left, as in dlib's scheme.
"""

from __future__ import annotations

import numpy as np

#: Jaw, 0..16: from the subject's right temple (image left) round the chin (8) to the left.
JAW = (127, 93, 132, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 361, 323, 356)
#: Brows, 17..21 (subject's right, outer to inner) and 22..26 (left, inner to outer): the upper
#: edge of each brow, where dlib's points sit.
BROWS = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
#: Nose, 27..30 down the bridge to the tip, 31..35 along the base from right to left.
NOSE = (168, 197, 5, 4, 98, 97, 2, 326, 327)
#: Eyes, 36..41 (right: outer corner, upper lid, inner corner, lower lid) and 42..47 (left: inner
#: corner, upper lid, outer corner, lower lid).
EYES = (33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380)
#: Outer lips, 48..59: right corner, upper lip to the left corner (54), lower lip back.
OUTER_LIPS = (61, 40, 37, 0, 267, 270, 291, 405, 314, 17, 84, 181)
#: Inner lips, 60..67: right inner corner, upper inner lip (62 on the midline), left inner corner
#: (64), lower inner lip (66 on the midline): all on the inner-lip contour.
INNER_LIPS = (78, 82, 13, 312, 308, 317, 14, 87)

#: (68,) mesh index of each dlib point, in dlib's order.
MESH_TO_68 = np.array(JAW + BROWS + NOSE + EYES + OUTER_LIPS + INNER_LIPS, np.intp)
#: The outer eye corners (subject's right, left): the roll of the face and the crop's level.
MESH_EYE_CORNERS = (33, 263)
#: The whole inner-lip contour of the mesh (upper, corner to corner, then lower), for consumers
#: that want more than dlib's eight points.
INNER_LIP_CONTOUR = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308,
                     324, 318, 402, 317, 14, 87, 178, 88, 95)  # fmt: skip

#: MediaPipe's lip refinement: the mesh index of each of the attention model's 80 lip points, in
#: the model's output order (lower outer, upper outer, lower inner, upper inner, then the same
#: four for the semi-outer and semi-inner rings), as in MediaPipe's
#: tensors_to_face_landmarks_with_attention.pbtxt.
LIP_REFINEMENT = np.array(
    [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
     78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
     76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306, 184, 74, 73, 72, 11, 302, 303, 304, 408,
     62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 183, 42, 41, 38, 12, 268, 271, 272, 407],
    np.intp,
)  # fmt: skip

assert len(MESH_TO_68) == 68 and len(set(MESH_TO_68.tolist())) == 68
