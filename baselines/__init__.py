"""Reference models; each module registers one model with `@models.register(name)`. Installed as aebench.baselines."""
