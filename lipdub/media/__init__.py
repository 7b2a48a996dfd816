"""Media I/O: frame-exact streaming decode, streaming encode, audio decode/resample, muxing."""
