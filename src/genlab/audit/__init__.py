"""Bias audits of table models and their remedies: :func:`audit` (representation, amplification,
fidelity per group, downstream fairness through fairlearn) and the remedies as sampling options
(:class:`Balance`, :class:`Parity`, :class:`Fair`: ``model.sample(n, processors=[...])``, see
:mod:`genlab.audit.processors` and :mod:`genlab.audit.remedies`)."""

from genlab.audit.processors import Balance, Fair, Parity, Remedy
from genlab.audit.report import REMEDIES, Audit, audit, check_columns, render_html

__all__ = ["REMEDIES", "Audit", "Balance", "Fair", "Parity", "Remedy", "audit", "check_columns", "render_html"]
