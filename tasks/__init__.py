"""Standard tasks; each sub-package registers one task with `@tasks.register(name)`. Installed as aebench.tasks."""
