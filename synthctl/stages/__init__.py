"""The study's stages: extract -> design -> analyze -> report.

Each stage reads the previous stages' artifacts from the (temporary) output folder, writes its
own, and records them in the manifest. The runner (`synthctl.runner`) chains them.
"""

from synthctl.stages._context import NullProgress, Progress, StageContext

__all__ = ["NullProgress", "Progress", "StageContext"]
