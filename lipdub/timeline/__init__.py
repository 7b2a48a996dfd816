"""Editorial interchange: a cut (OTIO, CMX 3600 EDL, FCP XML) in as shots, dubbed shots out.

``cut`` reads and writes timelines through OpenTimelineIO's adapters; ``items`` turns the clips
of one video track into shot candidates (or says why a clip cannot be one); ``media`` finds the
files clips point at; ``importer`` writes the shots file; ``export`` relinks the cut to the
dubbed outputs. docs/timeline.md describes the mapping.
"""
