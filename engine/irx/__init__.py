"""irx: declarative incident remediation (validate, plan and run incident playbooks)."""

__version__ = "0.1.0"
