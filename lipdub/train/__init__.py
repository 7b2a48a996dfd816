"""lipdub.train: prepared data, SyncNet and generator training (``lipdub data`` / ``lipdub train``).

- ``data``: ``lipdub data prepare`` — analysis, eye-aligned crops (H.264 4:4:4), U masks,
  landmarks, 16 kHz audio and per-frame mel windows per clip, with speaker ids and splits.
- ``dataset``: torch datasets of 5-frame windows with augmentation (SyncNet pairs, generator
  samples with a reference frame from another time).
- ``losses``: L1, the perceptual term (discriminator feature matching, or VGG19 from a user file),
  non-saturating adversarial loss with R1, and L_sync.
- ``syncnet`` / ``backbone``: the training loops; ``checkpoints``: SyncNet / discriminator files
  and resumable state; ``offsets``: AV offsets measured with a trained SyncNet.
"""
