"""capstone: a video-analytics workbench.

Stages are plain functions, usable one by one in a notebook and composed by the pipeline.
"""

__version__ = "0.1.0"
