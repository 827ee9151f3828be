"""Bias audits of table models and their remedies: :func:`audit` (representation, amplification,
fidelity per group, downstream fairness through fairlearn) and the remedies it can sample through
(:mod:`genlab.audit.remedies`)."""

from genlab.audit.report import REMEDIES, Audit, audit, check_columns, render_html

__all__ = ["REMEDIES", "Audit", "audit", "check_columns", "render_html"]
