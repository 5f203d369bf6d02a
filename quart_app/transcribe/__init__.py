"""Transcribing long media: chunked provider calls, stitched results, subtitles and background jobs."""
