from core import Addon

P = "mosaic_broken_addons"

missing = Addon(name="broken_missing", version="1.0", title="Missing dependency", package=P,
                depends=("crm_does_not_exist",))
version = Addon(name="broken_version", version="1.0", title="Wrong version", package=P,
                depends=("crm_lead>=9.0",))
cycle_a = Addon(name="cycle_a", version="1.0", title="Cycle A", package=P, depends=("cycle_b",))
cycle_b = Addon(name="cycle_b", version="1.0", title="Cycle B", package=P, depends=("cycle_a",))
typo = Addon(name="broken_typo", version="1.0", title="Hook typo", package=P, hooks=f"{P}.typo_hooks")
models = Addon(name="broken_models", version="1.0", title="Bad models", package=P, models=f"{P}.bad_models")
needs_broken = Addon(name="needs_broken", version="1.0", title="Needs a broken addon", package=P,
                     depends=("broken_models",))
