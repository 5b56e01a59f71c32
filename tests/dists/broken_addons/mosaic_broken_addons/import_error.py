import mosaic_this_module_does_not_exist  # noqa: F401  - the point of this addon

from core import Addon

addon = Addon(name="broken_import", version="1.0", title="Broken import", package=__name__)
