"""lipdub: re-sync actors' lips in finished footage to a dubbed audio track, shot by shot."""

__version__ = "0.1.0"

import cv2 as _cv2

#: OpenCV's worker threads: one, on every machine. OpenCV cuts an image into one stripe per thread,
#: and its float ``warpAffine`` rounds differently where stripes meet: left at its default (the
#: CPU count), a crop warped back into a 1080p frame differed by 1/255 between one CPU and two,
#: so a render was not byte-exact across machines (tests/test_cv_threads.py). A count above one
#: is not enough either: OpenCV runs a call on one stripe when its pool is busy with another
#: thread's call, and a render's decode, per-frame work and encode run in threads of their own.
#: The parallelism a render gets is across frames and stages, not inside one OpenCV call.
CV_THREADS = 1
_cv2.setNumThreads(CV_THREADS)
