"""talkvid: curation of talking-head video datasets, after the TalkVid pipeline."""

__version__ = "0.1.0"
